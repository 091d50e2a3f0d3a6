package config

import (
	"bytes"
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// WriteDiagnostics prints diags for a person: a `FILE:LINE:COL: Error:
// Summary` line that editors and terminals can jump to, then HCL's own
// rendering with the source snippet and the detail. It works on a nil
// *Config too, without snippets.
func (c *Config) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics) error {
	var files map[string]*hcl.File
	var filename string
	if c != nil {
		files, filename = c.files, c.Filename
	}
	var buf bytes.Buffer
	tw := hcl.NewDiagnosticTextWriter(&buf, files, 78, false)
	for _, d := range diags {
		if d == nil {
			continue
		}
		sev := "Error"
		if d.Severity == hcl.DiagWarning {
			sev = "Warning"
		}
		loc := filename
		if d.Subject != nil {
			loc = pos(*d.Subject)
		}
		if _, err := fmt.Fprintf(w, "%s: %s: %s\n", loc, sev, d.Summary); err != nil {
			return err
		}
		buf.Reset()
		if err := tw.WriteDiagnostic(d); err != nil {
			return err
		}
		// HCL's rendering opens with its own "Error: Summary" line, which
		// would repeat the one above.
		body := buf.Bytes()
		if i := bytes.IndexByte(body, '\n'); i >= 0 && bytes.HasSuffix(body[:i], []byte(d.Summary)) {
			body = body[i+1:]
		}
		if _, err := w.Write(body); err != nil {
			return err
		}
	}
	return nil
}

// WriteDiagnostics is Config.WriteDiagnostics for callers that hold only the
// source. Load and Parse never return a nil *Config, so this is rarely needed.
func WriteDiagnostics(w io.Writer, filename string, src []byte, diags hcl.Diagnostics) error {
	p := hclparse.NewParser()
	p.ParseHCL(src, filename) // a broken file still yields its bytes for snippets
	return (&Config{Filename: filename, files: p.Files()}).WriteDiagnostics(w, diags)
}
