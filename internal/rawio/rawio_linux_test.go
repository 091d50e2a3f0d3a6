package rawio

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// pair returns a connected client and server of network ("unix", "tcp"),
// both wrapped.
func pair(t *testing.T, network string) (client, server net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	client, server = Wrap(c), Wrap(s)
	if _, ok := client.(*Conn); !ok {
		t.Fatalf("a %T was not wrapped", c)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// Bytes written both ways at once, far more than a socket buffer holds
// (the writer waits on the poller), arrive whole and in order, and the
// end of one side's writes reads as io.EOF.
func TestConnCarriesBothWays(t *testing.T) {
	for _, network := range []string{"unix", "tcp"} {
		client, server := pair(t, network)
		up, down := make([]byte, 8<<20), make([]byte, 8<<20)
		rand.Read(up)
		rand.Read(down)
		var wg sync.WaitGroup
		send := func(c net.Conn, b []byte) {
			defer wg.Done()
			for len(b) > 0 { // uneven writes
				n := min(len(b), 100_000)
				if _, err := c.Write(b[:n]); err != nil {
					t.Error(err)
					return
				}
				b = b[n:]
			}
			if err := c.(*Conn).Conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Error(err)
			}
		}
		receive := func(c net.Conn, want []byte) {
			defer wg.Done()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: read %d bytes (%v), want the %d sent", network, len(got), err, len(want))
			}
		}
		wg.Add(4)
		go send(client, up)
		go send(server, down)
		go receive(server, up)
		go receive(client, down)
		wg.Wait()
	}
}

// A read waits for the poller and keeps the connection's deadline; a
// close ends a read that waits.
func TestConnKeepsDeadlinesAndClose(t *testing.T) {
	client, server := pair(t, "unix")
	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := server.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	server.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := server.Read(make([]byte, 10))
		done <- err
	}()
	client.Write([]byte("x"))
	if err := <-done; err != nil {
		t.Fatalf("read: %v", err)
	}
	go func() {
		_, err := server.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it wait (it must end either way)
	server.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on a closed connection: %v", err)
	}
}

// What Wrap does not know it leaves alone.
func TestWrapLeavesOtherConnections(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("a pipe was wrapped")
	}
}
