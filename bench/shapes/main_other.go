//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "shapes: epoll and raw system calls are Linux-only")
	os.Exit(1)
}
