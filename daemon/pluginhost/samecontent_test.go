package pluginhost

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSameContent(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	long := strings.Repeat("0123456789abcdef", 10000) // several reads' worth
	a, b := write("a", long), write("b", long)
	changed := write("c", long[:len(long)-1]+"X")
	shorter := write("d", long[:len(long)-1])
	for _, tt := range []struct {
		x, y string
		want bool
	}{
		{a, b, true},
		{a, changed, false},
		{a, shorter, false},
		{a, filepath.Join(dir, "missing"), false},
		{write("e", ""), write("f", ""), true},
	} {
		if got := sameContent(tt.x, tt.y); got != tt.want {
			t.Errorf("sameContent(%s, %s) = %v", filepath.Base(tt.x), filepath.Base(tt.y), got)
		}
	}
}
