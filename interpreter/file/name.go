package file

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxFileName is the longest file name Linux accepts (NAME_MAX).
const maxFileName = 255

// checkPrefix reports what is wrong with a prefix: it must start with "/",
// must not end with one and has no empty segment, so that prefix+"/"+file
// is the only way a name can map to a file.
func checkPrefix(prefix string) error {
	switch {
	case !strings.HasPrefix(prefix, "/"):
		return fmt.Errorf(`must start with "/", got %s`, strconv.Quote(prefix))
	case strings.HasSuffix(prefix, "/"):
		return fmt.Errorf(`must not end with "/", got %s`, strconv.Quote(prefix))
	case strings.Contains(prefix, "//"):
		return fmt.Errorf(`must not contain an empty segment ("//"), got %s`, strconv.Quote(prefix))
	}
	return nil
}

// fileName maps name to the file it reads, relative to the directory:
// "/svc/web" under prefix "/svc" is "web". The result is always a single
// path element naming an entry of the directory: never empty, ".", "..",
// and never containing "/" or NUL. prefix must pass checkPrefix.
func fileName(prefix, name string) (string, error) {
	file, ok := strings.CutPrefix(name, prefix+"/")
	if !ok {
		return "", fmt.Errorf("%s is not under the prefix %s: names take the form %s/<file>",
			strconv.Quote(name), strconv.Quote(prefix), prefix)
	}
	if err := checkFileName(file); err != nil {
		return "", fmt.Errorf("%s does not name a file: %w", strconv.Quote(name), err)
	}
	return file, nil
}

func checkFileName(file string) error {
	switch {
	case file == "":
		return errors.New("nothing follows the prefix")
	case strings.Contains(file, "/"):
		return fmt.Errorf("%s has more than one segment; files are not looked up in subdirectories",
			strconv.Quote(file))
	case file == "." || file == "..":
		return fmt.Errorf("%s is not a file name", strconv.Quote(file))
	case strings.IndexByte(file, 0) >= 0:
		return errors.New("it contains a NUL byte")
	case len(file) > maxFileName:
		return fmt.Errorf("the file name is %d bytes long, more than the %d a file name may have",
			len(file), maxFileName)
	}
	return nil
}
