package httpfront

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/socketd/socketd/sdk"
	pluginpb "github.com/socketd/socketd/sdk/proto"
)

// fileCache remembers a route's cacheable file answers by path, so a hot
// static request is served by the core alone: open, check the file is still
// the one the plugin resolved, ServeContent. No gRPC call, no plugin slot.
//
// Correctness rests on the plugin's promise (FileAnswer.cacheable) that the
// answer depends only on the method class (GET/HEAD) and the path, and on
// the identity check at every hit: a file rewritten, replaced or swapped
// for a symlink no longer matches and the plugin is asked again. A reload
// builds new routes and so starts with empty caches.
type fileCache struct {
	m    sync.Map // path -> *cachedFile
	size atomic.Int64
}

// maxCachedFiles bounds the cache; past it, new answers are not kept
// (the plugin is asked as before), so a scan of many paths cannot grow the
// core's memory.
const maxCachedFiles = 16384

type cachedFile struct {
	file   sdk.File
	answer *pluginpb.FileAnswer
	head   *pluginpb.HTTPResponse
}

func (c *fileCache) get(path string) *cachedFile {
	if v, ok := c.m.Load(path); ok {
		return v.(*cachedFile)
	}
	return nil
}

func (c *fileCache) put(path string, head *pluginpb.HTTPResponse, fa *pluginpb.FileAnswer, f sdk.File) {
	if c.size.Load() >= maxCachedFiles {
		return
	}
	if _, loaded := c.m.LoadOrStore(path, &cachedFile{file: f, head: head, answer: fa}); !loaded {
		c.size.Add(1)
	}
}

func (c *fileCache) drop(path string, e *cachedFile) {
	if c.m.CompareAndDelete(path, e) {
		c.size.Add(-1)
	}
}

// cacheable reports whether r may be answered from (or fill) the cache.
func cacheable(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.ContentLength == 0
}
