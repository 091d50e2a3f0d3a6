// Package plainurl reads the commonest HTTP request target, a path of
// characters that need no escaping with perhaps a query, into a url.URL
// the caller already has, as url.ParseRequestURI would read it into one
// of its own: the core's fast lane and the SDK each save an allocation a
// request with it.
package plainurl

import (
	"net/url"
	"strings"
)

// Parse reads target into u, as url.ParseRequestURI would, and reports
// whether it could: any other target (escapes, a bare "?", bytes a path
// would escape) is left to url.ParseRequestURI, and u is then untouched.
func Parse(target string, u *url.URL) bool {
	path, query, hasQuery := strings.Cut(target, "?")
	if path == "" || path[0] != '/' || hasQuery && query == "" {
		return false
	}
	for i := 0; i < len(path); i++ {
		if !plainPathByte[path[i]] {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query}
	return true
}

// plainPathByte: the bytes a URL path keeps as they are, unescaped and
// escaping to themselves, so that its Path is the target and RawPath
// empty.
var plainPathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()
