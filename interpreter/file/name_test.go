package file

import (
	"path/filepath"
	"strings"
	"testing"
)

// nameTests are also the seed corpus of FuzzName.
var nameTests = []struct {
	prefix, name string
	want         string // the file; "" when the name is refused
	wantErr      string // substring of the error
}{
	{prefix: "/svc", name: "/svc/web", want: "web"},
	{prefix: "/svc", name: "/svc/web-1.example_2", want: "web-1.example_2"},
	{prefix: "/svc", name: "/svc/.hidden", want: ".hidden"},
	{prefix: "/svc", name: "/svc/...", want: "..."},
	{prefix: "/svc", name: "/svc/" + strings.Repeat("a", 255), want: strings.Repeat("a", 255)},
	{prefix: "/#/io.l5d.fs", name: "/#/io.l5d.fs/default", want: "default"},
	{prefix: "/a/b", name: "/a/b/c", want: "c"},

	{prefix: "/svc", name: "/svc/", wantErr: `"/svc/" does not name a file: nothing follows the prefix`},
	{prefix: "/svc", name: "/svc", wantErr: `"/svc" is not under the prefix "/svc": names take the form /svc/<file>`},
	{prefix: "/svc", name: "/svcweb", wantErr: `"/svcweb" is not under the prefix "/svc"`},
	{prefix: "/svc", name: "/other/web", wantErr: `"/other/web" is not under the prefix "/svc"`},
	{prefix: "/svc", name: "svc/web", wantErr: `is not under the prefix`},
	{prefix: "/svc", name: "", wantErr: `"" is not under the prefix`},
	{prefix: "/svc", name: "/svc/a/b", wantErr: `"/svc/a/b" does not name a file: "a/b" has more than one segment; files are not looked up in subdirectories`},
	{prefix: "/svc", name: "/svc//web", wantErr: `has more than one segment`},
	{prefix: "/svc", name: "/svc/web/", wantErr: `has more than one segment`},
	{prefix: "/svc", name: "/svc/.", wantErr: `"." is not a file name`},
	{prefix: "/svc", name: "/svc/..", wantErr: `".." is not a file name`},
	{prefix: "/svc", name: "/svc/../etc/passwd", wantErr: `has more than one segment`},
	{prefix: "/svc", name: "/svc/we\x00b", wantErr: `contains a NUL byte`},
	{prefix: "/svc", name: "/svc/" + strings.Repeat("a", 256), wantErr: `is 256 bytes long, more than the 255`},
}

func TestFileName(t *testing.T) {
	for _, tt := range nameTests {
		t.Run(tt.prefix+" "+tt.name, func(t *testing.T) {
			got, err := fileName(tt.prefix, tt.name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("fileName(%q, %q) = %q, %v; want error containing %q", tt.prefix, tt.name, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("fileName(%q, %q) = %q, %v; want %q", tt.prefix, tt.name, got, err, tt.want)
			}
		})
	}
}

func FuzzName(f *testing.F) {
	for _, tt := range nameTests {
		f.Add(tt.prefix, tt.name)
	}
	f.Fuzz(func(t *testing.T, prefix, name string) {
		if checkPrefix(prefix) != nil {
			return
		}
		file, err := fileName(prefix, name)
		if err != nil {
			if file != "" {
				t.Fatalf("fileName(%q, %q) = %q with error %v", prefix, name, file, err)
			}
			return
		}
		if prefix+"/"+file != name {
			t.Fatalf("fileName(%q, %q) = %q, which is not what follows the prefix", prefix, name, file)
		}
		if file == "" || file == "." || file == ".." || strings.ContainsAny(file, "/\x00") || len(file) > maxFileName {
			t.Fatalf("fileName(%q, %q) = %q, not a plain file name", prefix, name, file)
		}
		for _, dir := range []string{"/srv/svc", "svc", ".", "/"} {
			if p := filepath.Join(dir, file); filepath.Dir(p) != dir || filepath.Base(p) != file {
				t.Fatalf("fileName(%q, %q) = %q, which joined to %q is %q, outside it", prefix, name, file, dir, p)
			}
		}
	})
}
