package admin

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"
)

// View turns a configuration or state value into what JSON shows an
// operator: the keys as the TOML file writes them (snake_case, or a
// field's json tag), durations as "1.5s", addresses as text; fields tagged
// json:"-" left out.
func View(v any) any { return view(reflect.ValueOf(v)) }

var (
	durationType      = reflect.TypeFor[time.Duration]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func view(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	if v.Type().Implements(textMarshalerType) && (v.Kind() != reflect.Pointer || !v.IsNil()) {
		if b, err := v.Interface().(encoding.TextMarshaler).MarshalText(); err == nil {
			return string(b)
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return view(v.Elem())
	case reflect.Struct:
		out := make(map[string]any)
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := snake(f.Name)
			if tag, ok := f.Tag.Lookup("json"); ok {
				tagName, _, _ := strings.Cut(tag, ",")
				if tagName == "-" {
					continue
				}
				if tagName != "" {
					name = tagName
				}
			}
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				if inner, ok := view(v.Field(i)).(map[string]any); ok {
					for k, x := range inner {
						out[k] = x
					}
					continue
				}
			}
			out[name] = view(v.Field(i))
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[fmt.Sprint(view(it.Key()))] = view(it.Value())
		}
		return out
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return []any{}
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = view(v.Index(i))
		}
		return out
	}
	return v.Interface()
}

// snake turns a Go field name into the TOML key's style: PipeSize is
// pipe_size, TTLMin is ttl_min.
func snake(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) {
			next := i+1 < len(r) && unicode.IsLower(r[i+1])
			prev := i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]))
			if i > 0 && (prev || next) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(c))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}
