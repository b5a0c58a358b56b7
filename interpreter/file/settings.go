package file

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// Kind is kind "file": names resolve to the endpoints listed in the files
// of one directory.
var Kind = interpreter.Kind{Name: "file", Decode: decode}

// DefaultPrefix is the prefix stripped from names when none is configured.
const DefaultPrefix = "/svc"

// Settings are the settings of kind "file".
type Settings struct {
	// Dir is the directory of the service files, cleaned. A relative path
	// is relative to the working directory of the process.
	Dir string `json:"dir"`
	// Prefix is stripped from a name to find its file: with "/svc", the
	// name "/svc/web" reads Dir/web.
	Prefix string `json:"prefix"`
}

var _ interpreter.Settings = (*Settings)(nil)

func decode(t interpreter.Table) interpreter.Settings {
	dir := t.String("dir")
	st := &Settings{Prefix: interpreter.Or(t.String("prefix"), DefaultPrefix)}
	switch {
	case dir == nil && slices.Contains(t.Keys(), "dir"):
		// Of the wrong type, which the table has reported.
	case dir == nil:
		t.Problem("dir", "required for kind %q: the directory of the service files", "file")
	case *dir == "":
		t.Problem("dir", "must not be empty")
	case strings.IndexByte(*dir, 0) >= 0:
		t.Problem("dir", "must not contain a NUL byte")
	default:
		st.Dir = filepath.Clean(*dir)
	}
	if err := checkPrefix(st.Prefix); err != nil {
		t.Problem("prefix", "%v", err)
		return nil // every dst would be reported against a prefix that is wrong
	}
	return st
}

// CheckName reports a name that cannot map to a file of the directory:
// one outside the prefix, or whose remainder is not a single file name.
func (st *Settings) CheckName(name string) error {
	_, err := fileName(st.Prefix, name)
	return err
}

// New starts the interpreter's watcher. It does no disk work besides
// creating the inotify instance: the directory is first looked at by the
// watcher's goroutine.
func (st *Settings) New(env interpreter.Env) (interpreter.Interpreter, error) {
	return newInterpreter(st, env)
}
