package plainurl

import (
	"net/url"
	"reflect"
	"testing"
)

// FuzzParseMatchesParseRequestURI: every target Parse reads,
// url.ParseRequestURI reads the same way.
func FuzzParseMatchesParseRequestURI(f *testing.F) {
	for _, s := range []string{"/", "/test.jpg", "/a/b?x=1&y=2", "/p?", "/p??", "//x", "/a%20b", "/a!b", "/é", "/a?b\x7f", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		var got url.URL
		if !Parse(target, &got) {
			return
		}
		want, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatalf("%q: plain, but url.ParseRequestURI fails: %v", target, err)
		}
		if !reflect.DeepEqual(&got, want) {
			t.Fatalf("%q: plain %#v, url.ParseRequestURI %#v", target, got, *want)
		}
	})
}
