package jsonstr

import (
	"encoding/json"
	"testing"
)

// TestHTMLPolicyIsEncodingJSONs checks the html policy against
// encoding/json, for strings and bytes alike, and that neither allocates
// beyond the output.
func TestHTMLPolicyIsEncodingJSONs(t *testing.T) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "<a href='x'>&</a>", "\x00\x1f\t\n\r", "日本語 ☃ 😀", "\u2028\u2029", "bad \xff\xfe utf8"} {
		want, _ := json.Marshal(s)
		for name, got := range map[string][]byte{
			"string": append(AppendEscaped([]byte{'"'}, s, true), '"'),
			"bytes":  append(AppendEscaped([]byte{'"'}, []byte(s), true), '"'),
		} {
			if string(got) != string(want) {
				t.Errorf("%s %q: %s, want %s", name, s, got, want)
			}
		}
	}
	buf := make([]byte, 0, 256)
	text := []byte("日本語 ☃ <b> \xff \u2028")
	if n := testing.AllocsPerRun(100, func() { AppendEscaped(buf[:0], text, true) }); n != 0 {
		t.Errorf("escaping bytes allocated %v times", n)
	}
}
