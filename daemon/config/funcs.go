package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// maxFileBytes bounds file(): it is meant for SQL schemas and templates, and
// a mistyped path should not make socketd read a disk image into memory.
const maxFileBytes = 16 << 20

// functions are the only two a config can call: env() so one file serves
// several machines, file() so long text lives in its own file.
func (c *Config) functions() map[string]function.Function {
	return map[string]function.Function{
		"env": function.New(&function.Spec{
			Description: "The value of an environment variable, or the default when it is unset or empty.",
			Params:      []function.Parameter{{Name: "name", Type: cty.String}},
			VarParam:    &function.Parameter{Name: "default", Type: cty.String},
			Type:        function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				if len(args) > 2 {
					return cty.NilVal, function.NewArgErrorf(2, "env takes a name and at most one default value")
				}
				if v := os.Getenv(args[0].AsString()); v != "" {
					return cty.StringVal(v), nil
				}
				if len(args) == 2 {
					return args[1], nil
				}
				return cty.StringVal(""), nil
			},
		}),
		"file": function.New(&function.Spec{
			Description: "The contents of a UTF-8 text file; a relative path starts in the config file's folder.",
			Params:      []function.Parameter{{Name: "path", Type: cty.String}},
			Type:        function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				s, err := c.readFile(args[0].AsString())
				if err != nil {
					return cty.NilVal, function.NewArgError(0, err)
				}
				return cty.StringVal(s), nil
			},
		}),
	}
}

func (c *Config) readFile(name string) (string, error) {
	where := fmt.Sprintf("relative paths start in the folder that holds %s", c.Filename)
	path := c.abs(name)
	// Stat before Open: opening a FIFO or a terminal would block.
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("no file %q exists; %s", name, where)
	case err != nil:
		return "", fmt.Errorf("cannot read %q: %w", name, cause(err))
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%q is not a regular file", name)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", name, cause(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("cannot read %q: %w", name, cause(err))
	case len(b) > maxFileBytes:
		return "", fmt.Errorf("%q is larger than %d MiB", name, maxFileBytes>>20)
	case !utf8.Valid(b):
		return "", fmt.Errorf("%q is not UTF-8 text", name)
	}
	return string(b), nil
}

// cause drops the *fs.PathError wrapper, whose absolute path only repeats
// the one the message names as the user wrote it.
func cause(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}
