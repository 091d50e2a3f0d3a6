// Command socketd-plugin-static is socketd's static content plugin: it
// serves the files under a directory (the tutorial's index.html and
// test.jpg), answers fixed text for a route, and gives a one-line reply on
// a tcp listener (the tutorial's very first "can you hear me?" server).
//
// It never reads file contents itself: it resolves a request to a file
// inside its root and hands the core a file answer, so Range, conditional
// requests and sendfile are done once, in the core.
package main

import "github.com/socketd/socketd/sdk"

func main() { sdk.Serve(newPlugin()) }
