// Package jsonstr escapes text for a JSON string, one loop for the two
// policies the project writes: encoding/json's, which also escapes <, >
// and & so the text is safe inside HTML (the sqlite plugin's JSON), and
// slog's JSON handler's, which does not (the daemon's access line).
package jsonstr

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// Safe reports whether an ASCII byte goes into a JSON string as it is:
// all but the control characters, the double quote and the backslash.
func Safe(c byte) bool { return c >= 0x20 && c != '"' && c != '\\' }

// AppendEscaped appends s, escaped, without the quotes: \" \\ \n \r \t,
// \u00XX for other control bytes (and for <, > and & when html), \ufffd
// for each invalid UTF-8 byte, and U+2028 and U+2029 escaped.
func AppendEscaped[S string | []byte](b []byte, s S, html bool) []byte {
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if Safe(c) && !(html && (c == '<' || c == '>' || c == '&')) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		// At most four bytes: the conversion copies into a stack buffer.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
