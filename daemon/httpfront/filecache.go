package httpfront

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/socketd/socketd/daemon/fileid"
	"github.com/socketd/socketd/sdk"
	pluginpb "github.com/socketd/socketd/sdk/proto"
	"google.golang.org/protobuf/proto"
)

// fileCache remembers a route's cacheable file answers by path, so a hot
// static request is served by the core alone: one stat to check the file is
// still the one the plugin resolved, then its bytes. No gRPC call, no plugin
// slot.
//
// Correctness rests on the plugin's promise (FileAnswer.cacheable) that the
// answer depends only on the method class (GET/HEAD) and the path, and on
// the identity check at every hit: a file rewritten, replaced or swapped
// for a symlink no longer matches and the plugin is asked again. A reload
// builds new routes and so starts with empty caches.
//
// Small files also keep their bytes in memory, which saves the open, the
// reads and the close of every hit. Bytes are kept only once the file has
// settled: its inode change time (which no one can set, and every write,
// truncate or chmod moves forward) lies more than settle before the read.
// A hit serves them only while the change time is still the same, so a
// rewrite in place that keeps size and mtime is seen too. The settle
// window covers file systems whose timestamps are coarser than the time
// between two writes (git calls such entries "racily clean").
type fileCache struct {
	m    sync.Map // path -> *cachedFile
	size atomic.Int64
	// memUsed counts the bytes kept in memory, against maxMemBytes.
	memUsed atomic.Int64
	// settle is how old a file's change time must be before its bytes are
	// kept; zero means defaultSettle.
	settle time.Duration
}

const (
	// maxCachedFiles bounds the cache; past it, new answers are not kept
	// (the plugin is asked as before), so a scan of many paths cannot grow
	// the core's memory.
	maxCachedFiles = 16384
	// maxMemFile is the largest file whose bytes are kept in memory; larger
	// files go out with sendfile, where the copy would cost more than the
	// open.
	maxMemFile = 128 << 10
	// maxMemBytes bounds a route's bytes kept in memory.
	maxMemBytes = 8 << 20
	// defaultSettle is far coarser than any file system's timestamps.
	defaultSettle = time.Second
)

type cachedFile struct {
	file   sdk.File
	answer *pluginpb.FileAnswer
	head   *pluginpb.HTTPResponse
	// body holds the file's bytes once kept (small, settled files only).
	body atomic.Pointer[fileBytes]
	// loading is set while one request reads the bytes, so a burst of hits
	// on a new file reads it once.
	loading atomic.Bool
}

// fileBytes is a settled file's content and the file's ID (identity and
// change time) when it was read.
type fileBytes struct {
	data []byte
	id   fileid.ID
	// head is the whole head of a plain GET or HEAD answer, built once
	// rather than per hit. Its value slices are shared by every hit: each
	// has len == cap, so an append copies, and net/http clones the head
	// before writing it. Nothing writes into a header value in place.
	head []headerField
	// encoded: the plugin named a Content-Encoding, which only
	// ServeContent handles.
	encoded bool
	// laneHead is head as the fast lane writes it (laneHeadPrefix), or
	// nil.
	laneHead []byte
	// local: the file is on a local file system, so each hit's stat may
	// be a raw one (fileid.OfLocal).
	local bool
}

// idOf stats the kept file's path.
func (b *fileBytes) idOf(path string) (fileid.ID, error) {
	if b.local {
		return fileid.OfLocal(path)
	}
	return fileid.Of(path)
}

type headerField struct {
	name   string
	values []string
}

// plainHead builds e's head for kept bytes data: the plugin's headers,
// the type (as ServeContent finds it: by extension, else by content), the
// validators and the length.
func plainHead(e *cachedFile, data []byte) (head []headerField, laneHead []byte, encoded bool) {
	h := http.Header{}
	setFileHeaders(h, e.head, e.answer)
	if _, ok := h["Content-Type"]; !ok {
		ct := mime.TypeByExtension(filepath.Ext(e.file.Path))
		if ct == "" {
			ct = http.DetectContentType(data)
		}
		h.Set("Content-Type", ct)
	}
	h.Set("Last-Modified", e.file.Identity.ModTime().UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	head = make([]headerField, 0, len(h))
	for name, values := range h {
		head = append(head, headerField{name, slices.Clip(values)})
	}
	return head, laneHeadPrefix(h), h.Get("Content-Encoding") != ""
}

// serve answers r with the kept bytes. A plain GET or HEAD (the hot case)
// gets its headers and body in one write (writeWhole); Range and
// conditional requests, and answers with a Content-Encoding, take
// http.ServeContent's full path.
func (b *fileBytes) serve(w http.ResponseWriter, r *http.Request, e *cachedFile) {
	if b.encoded || first(r.Header, "Range") != "" || first(r.Header, "If-None-Match") != "" || first(r.Header, "If-Modified-Since") != "" ||
		first(r.Header, "If-Match") != "" || first(r.Header, "If-Unmodified-Since") != "" {
		setFileHeaders(w.Header(), e.head, e.answer)
		http.ServeContent(w, r, e.file.Path, e.file.Identity.ModTime(), bytes.NewReader(b.data))
		return
	}
	if kw, ok := w.(keptWriter); ok && b.laneHead != nil && kw.writeKept(b.laneHead, b.data, r.Method != http.MethodHead) {
		return
	}
	h := w.Header()
	for _, f := range b.head {
		h[f.name] = f.values
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		writeWhole(w, r, b.data)
	}
}

func (c *fileCache) get(path string) *cachedFile {
	if v, ok := c.m.Load(path); ok {
		return v.(*cachedFile)
	}
	return nil
}

// put keeps a plugin's file answer (the File of head) for path. The head is
// copied: the frame it came in is received into again
// (exchange.Call.Recv).
func (c *fileCache) put(path string, head *pluginpb.HTTPResponse, f sdk.File) {
	if c.size.Load() >= maxCachedFiles {
		return
	}
	head = proto.CloneOf(head)
	e := &cachedFile{file: f, head: head, answer: head.GetFile()}
	if _, loaded := c.m.LoadOrStore(path, e); !loaded {
		c.size.Add(1)
	}
}

func (c *fileCache) drop(path string, e *cachedFile) {
	if c.m.CompareAndDelete(path, e) {
		c.size.Add(-1)
		if b := e.body.Swap(nil); b != nil {
			c.memUsed.Add(-int64(len(b.data)))
		}
	}
}

// serve answers r from the cached entry e if the file at its path is still
// the one the plugin resolved, and reports whether it did. When it did
// not, the entry is gone and the plugin must be asked.
func (c *fileCache) serve(w http.ResponseWriter, r *http.Request, path string, e *cachedFile) bool {
	if b := e.body.Load(); b != nil {
		// Kept bytes are good while the path still names the same,
		// unchanged file: one stat.
		if id, err := b.idOf(e.file.Path); err == nil && id == b.id {
			b.serve(w, r, e)
			return true
		}
	}
	// Otherwise the open checks the identity itself.
	fh, err := sdk.OpenFile(e.file)
	if err != nil {
		c.drop(path, e)
		return false
	}
	if e.file.Identity.Size <= maxMemFile && e.loading.CompareAndSwap(false, true) {
		b := c.keepBytes(fh, e)
		e.loading.Store(false)
		if b != nil {
			fh.Close()
			b.serve(w, r, e)
			return true
		}
	}
	serveOpenFile(w, r, e.head, e.answer, fh)
	return true
}

// keepBytes reads the opened file into e when it is small and settled and
// the route's budget allows; it returns the bytes kept, or nil.
func (c *fileCache) keepBytes(fh *os.File, e *cachedFile) *fileBytes {
	settle := c.settle
	if settle == 0 {
		settle = defaultSettle
	}
	readAt := time.Now()
	var st syscall.Stat_t
	if syscall.Fstat(int(fh.Fd()), &st) != nil {
		return nil
	}
	before := fileid.FromStat(&st)
	if !before.Regular || before.FileIdentity != e.file.Identity || time.Unix(before.Change.Unix()).After(readAt.Add(-settle)) {
		return nil
	}
	size := before.Size
	if c.memUsed.Add(size) > maxMemBytes {
		c.memUsed.Add(-size)
		return nil
	}
	data := make([]byte, size)
	_, err := io.ReadFull(io.NewSectionReader(fh, 0, size), data)
	// Whatever changed the file during the read also moved its change time.
	if err != nil || syscall.Fstat(int(fh.Fd()), &st) != nil || fileid.FromStat(&st) != before {
		c.memUsed.Add(-size)
		return nil
	}
	b := &fileBytes{data: data, id: before, local: fileid.Local(fh, e.file.Path)}
	b.head, b.laneHead, b.encoded = plainHead(e, data)
	if old := e.body.Swap(b); old != nil {
		c.memUsed.Add(-int64(len(old.data)))
	}
	return b
}

// cacheable reports whether r may be answered from (or fill) the cache.
func cacheable(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.ContentLength == 0
}
