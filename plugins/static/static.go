package main

import (
	"errors"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/socketd/socketd/sdk"
)

// site is what one route serves: files under root, or fixed text.
type site struct {
	// root confines every lookup: names that climb out of it, through
	// ".." or a symlink, fail inside the kernel-backed os.Root walk rather
	// than in a string check that could be fooled.
	root *os.Root
	// dir is root's absolute, symlink-free path; the core reopens
	// dir + name and checks the file's identity.
	dir           string
	index         []string
	stripPrefix   string // no trailing slash
	allowDotfiles bool
	cacheControl  string
	inline        *inline
}

// inline is a route's fixed answer (body = "..."), the tutorial's
// text content.
type inline struct {
	body        []byte
	contentType string
	status      int
}

// ServeHTTP answers a request through the route it came by.
func (p *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := p.sites[sdk.RouteID(r)]
	if s == nil {
		// Only the core's routes reach here; an unknown one means the core
		// and the plugin disagree about the config, which is not the
		// client's fault.
		if s = p.sites[""]; s == nil {
			slog.Error("static: request for a route without config", "route", sdk.RouteID(r))
			fail(w, http.StatusInternalServerError)
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		fail(w, http.StatusMethodNotAllowed)
		return
	}
	if s.inline != nil {
		s.serveInline(w, r)
		return
	}
	s.serveFile(w, r)
}

func (s *site) serveInline(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", s.inline.contentType)
	h.Set("Content-Length", strconv.Itoa(len(s.inline.body)))
	if s.cacheControl != "" {
		h.Set("Cache-Control", s.cacheControl)
	}
	w.WriteHeader(s.inline.status)
	if r.Method != http.MethodHead {
		w.Write(s.inline.body)
	}
}

func (s *site) serveFile(w http.ResponseWriter, r *http.Request) {
	name, ok := s.name(r.URL.Path)
	if !ok {
		fail(w, http.StatusNotFound)
		return
	}
	fi, err := s.stat(name)
	if err != nil {
		failErr(w, r, err)
		return
	}
	slash := strings.HasSuffix(r.URL.Path, "/")
	// A file found through a directory's index is the answer only as
	// long as no earlier index name appears; only the first name is safe
	// for the core to cache by path.
	cacheable := true
	switch {
	case fi.IsDir() && !slash:
		// Leading slashes fold into one: "//host/" in Location would send
		// the browser to another site.
		loc := url.URL{Path: "/" + strings.TrimLeft(r.URL.Path, "/") + "/", RawQuery: r.URL.RawQuery}
		w.Header().Set("Location", loc.String())
		fail(w, http.StatusMovedPermanently)
		return
	case fi.IsDir():
		var i int
		if name, fi, i, err = s.findIndex(name); err != nil {
			failErr(w, r, err)
			return
		}
		cacheable = i == 0
	case slash:
		// "/page.html/" names a directory that is not one.
		fail(w, http.StatusNotFound)
		return
	}
	if !fi.Mode().IsRegular() {
		fail(w, http.StatusNotFound) // devices, sockets, fifos
		return
	}
	f := sdk.FileFor(filepath.Join(s.dir, filepath.FromSlash(name)), fi)
	f.ContentType = contentType(name)
	f.Cacheable = cacheable
	if s.cacheControl != "" {
		w.Header().Set("Cache-Control", s.cacheControl)
	}
	sdk.ServeFile(w, r, f)
}

// name maps a request path to a slash-separated name inside the root, or
// reports false for a path that must not reach the file system at all. The
// path arrives decoded and uncleaned, so "%2e%2e" is already "..".
func (s *site) name(p string) (string, bool) {
	if s.stripPrefix != "" {
		rest, ok := strings.CutPrefix(p, s.stripPrefix)
		if !ok || rest != "" && rest[0] != '/' {
			return "", false // "/staticfoo" is not under "/static"
		}
		if p = rest; p == "" {
			p = "/"
		}
	}
	// A backslash is a separator on Windows and a traversal attempt
	// everywhere; a NUL ends a C string early.
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return "", false
	}
	for i, seg := range strings.Split(p[1:], "/") {
		if !strings.HasPrefix(seg, ".") {
			continue
		}
		if seg == "." || seg == ".." {
			// Refused even when it would stay inside: no legitimate
			// client sends them, and one path per file keeps caching
			// and logs simple.
			return "", false
		}
		if !s.allowDotfiles && !(i == 0 && seg == ".well-known") {
			return "", false // .git, .env, .htpasswd, ...
		}
	}
	name := strings.TrimPrefix(path.Clean(p), "/") // folds "//"
	if name == "" {
		name = "."
	}
	return name, true
}

// stat opens name to learn whether it can be read (a file the core could
// not open is 403 here, not a failure there) and returns its FileInfo.
// O_NONBLOCK keeps a fifo in the root from hanging the request.
func (s *site) stat(name string) (fs.FileInfo, error) {
	f, err := s.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// errNoIndex is a directory without any of the index files; directories
// are never listed.
var errNoIndex = errors.New("directory has no index file")

// findIndex finds the first index file of dir and its position in s.index.
func (s *site) findIndex(dir string) (string, fs.FileInfo, int, error) {
	for i, idx := range s.index {
		name := path.Join(dir, idx)
		fi, err := s.stat(name)
		switch {
		case err == nil && fi.Mode().IsRegular():
			return name, fi, i, nil
		case errors.Is(err, fs.ErrPermission):
			return "", nil, 0, err
		}
	}
	return "", nil, 0, errNoIndex
}

// contentType leaves unknown extensions empty so the core sniffs them.
func contentType(name string) string {
	switch ext := strings.ToLower(path.Ext(name)); ext {
	case "":
		return ""
	case ".html", ".htm":
		// Not left to /etc/mime.types, which may drop the charset.
		return "text/html; charset=utf-8"
	default:
		return mime.TypeByExtension(ext)
	}
}

// failErr answers a lookup error with its HTTP meaning. Every error that
// is not about permission is a 404, including escapes out of the root, so
// a probe learns nothing about what lies outside.
func failErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, fs.ErrPermission), errors.Is(err, errNoIndex):
		fail(w, http.StatusForbidden)
	default:
		if !errors.Is(err, fs.ErrNotExist) {
			slog.Debug("static: lookup refused", "path", r.URL.Path, "err", err)
		}
		fail(w, http.StatusNotFound)
	}
}

// fail writes a short text answer; error pages are not this plugin's job.
func fail(w http.ResponseWriter, code int) {
	http.Error(w, http.StatusText(code), code)
}
