package file

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// maxFileSize bounds the size of a service file: about 80 000 endpoints.
const maxFileSize = 1 << 20

// readFile reads and parses the service file at path. A missing file is
// NotFound; any other problem is Failed, with an error that names the
// file (and the line, for a malformed one).
func readFile(path string) interpreter.Resolution {
	data, err := readBounded(path)
	if errors.Is(err, fs.ErrNotExist) {
		return interpreter.NotFoundAnswer()
	}
	if err != nil {
		return interpreter.FailedWith(fmt.Errorf("file: %w", err))
	}
	eps, err := parseFile(data)
	if err != nil {
		return interpreter.FailedWith(fmt.Errorf("file: %s: %w", path, err))
	}
	return interpreter.BoundTo(eps)
}

// readBounded reads a regular file of at most maxFileSize bytes. It opens
// without blocking, so that a FIFO put in the file's place cannot stop the
// watcher, and refuses anything but a regular file.
func readBounded(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %s, not a regular file", path, describe(fi.Mode()))
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d bytes a service file may have", path, fi.Size(), maxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s is more than the %d bytes a service file may have", path, maxFileSize)
	}
	return data, nil
}

// describe names a type of file that is not a regular file.
func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file (" + m.Type().String() + ")"
}
