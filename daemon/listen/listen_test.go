package listen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestHandoffRefusesNoConnection moves a socket from one view to another
// while clients connect without pause: every connection is accepted by one
// of the views, and closing a view leaves the socket open.
func TestHandoffRefusesNoConnection(t *testing.T) {
	s, err := Bind("tcp", "127.0.0.1:0", discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	serve := func(ln net.Listener, tag string) *sync.WaitGroup {
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						t.Errorf("%s: accept: %v", tag, err)
					}
					return
				}
				fmt.Fprintln(c, tag)
				c.Close()
			}
		})
		return &wg
	}
	dialOnce := func() (string, error) {
		c, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return bufio.NewReader(c).ReadString('\n')
	}

	old := s.Listener()
	oldDone := serve(old, "old")
	stop := make(chan struct{})
	var clients sync.WaitGroup
	seen := map[string]int{}
	var mu sync.Mutex
	for range 4 {
		clients.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				line, err := dialOnce()
				if err != nil {
					t.Errorf("client: %v", err)
					return
				}
				mu.Lock()
				seen[line]++
				mu.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	next := s.Listener()
	nextDone := serve(next, "new")
	old.Close() // the reload's order: the new view accepts before the old one closes
	oldDone.Wait()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	clients.Wait()
	if seen["old\n"] == 0 || seen["new\n"] == 0 {
		t.Errorf("connections per view: %v; want some on each", seen)
	}
	if _, err := dialOnce(); err != nil {
		t.Fatalf("after the old view closed: %v", err)
	}
	s.Close()
	nextDone.Wait()
	if _, err := next.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed socket: %v", err)
	}
}

func TestPacketViews(t *testing.T) {
	s, err := Bind("udp", "127.0.0.1:0", discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	v1 := s.PacketConn()
	client.Write([]byte("ping"))
	buf := make([]byte, 100)
	n, from, err := v1.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("ReadFrom: %q %v", buf[:n], err)
	}
	if _, err := v1.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("reply: %q %v", buf[:n], err)
	}

	// A deadline in the past ends a blocked read, as UDP.Shutdown uses it.
	done := make(chan error, 1)
	go func() { _, _, err := v1.ReadFrom(buf); done <- err }()
	time.Sleep(20 * time.Millisecond)
	v1.SetReadDeadline(time.Now())
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("after the deadline: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SetReadDeadline did not wake ReadFrom")
	}
	v1.Close()

	// The socket outlives the view: a new view reads the next datagram.
	v2 := s.PacketConn()
	client.Write([]byte("again"))
	v2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := v2.ReadFrom(buf); err != nil || string(buf[:n]) != "again" {
		t.Fatalf("second view: %q %v", buf[:n], err)
	}
	if _, _, err := v1.ReadFrom(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("closed view: %v", err)
	}
}
