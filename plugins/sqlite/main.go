// Command socketd-plugin-sqlite is socketd's database plugin, the
// tutorial's LAMP step done the way Datasette does canned queries: the SQL
// of every route lives in config.hcl as one named, parameterised statement,
// and a request only ever supplies parameter values. Reads run on a pool
// of read-only connections, writes on one writer in IMMEDIATE transactions,
// and answers come as JSON, newline-delimited JSON, CSV or an html/template
// page. See README.md for its config.
package main

import "github.com/socketd/socketd/sdk"

func main() { sdk.Serve(newPlugin()) }
