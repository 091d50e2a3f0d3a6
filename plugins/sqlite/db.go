package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// database is one SQLite file with its connections: one writer, used by one
// request at a time, and a pool of read-only readers. WAL lets the readers
// run while the writer writes; serialising writes inside the process means
// they never wait on SQLite's lock for each other, only for other processes
// (a reload's overlap, the sqlite3 shell).
type database struct {
	path    string
	writer  chan *conn // holds the one writer while it is free
	readers chan *conn // holds the free readers
	all     []*conn
	closing sync.Once
	// closed is closed once close has closed every connection.
	closed chan struct{}
}

// conn is a connection and the statements prepared on it, by SQL text.
// Statements are prepared on first use and kept: preparing costs more than
// most of the queries a route runs.
type conn struct {
	db    *sqlite3.Conn
	stmts map[string]*sqlite3.Stmt
}

// dbOptions are the plugin block's connection settings.
type dbOptions struct {
	path        string
	busyTimeout time.Duration
	readers     int
	synchronous string // "full" or "normal"
}

// openConn opens one connection and applies the settings every connection
// needs: foreign keys are off by default in SQLite, busy_timeout makes a
// locked database wait instead of failing at once, and trusted_schema off
// keeps a tampered schema from running functions with side effects.
func openConn(o dbOptions, readOnly bool) (*conn, error) {
	flags := sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE
	if readOnly {
		flags = sqlite3.OPEN_READONLY
	}
	db, err := sqlite3.OpenFlags(o.path, flags|sqlite3.OPEN_NOMUTEX)
	if err != nil {
		return nil, err
	}
	pragmas := []string{
		"PRAGMA foreign_keys = ON",
		"PRAGMA trusted_schema = OFF",
	}
	if readOnly {
		pragmas = append(pragmas, "PRAGMA query_only = ON")
	} else {
		pragmas = append(pragmas, "PRAGMA synchronous = "+strings.ToUpper(o.synchronous))
	}
	for _, p := range pragmas {
		if err := db.Exec(p); err != nil {
			db.Close()
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	if err := db.BusyTimeout(o.busyTimeout); err != nil {
		db.Close()
		return nil, err
	}
	return &conn{db: db, stmts: map[string]*sqlite3.Stmt{}}, nil
}

// openDatabase opens the writer, switches the file to WAL (a property of
// the file, kept across opens), and opens the readers.
func openDatabase(o dbOptions) (*database, error) {
	w, err := openConn(o, false)
	if err != nil {
		return nil, err
	}
	d := &database{path: o.path, writer: make(chan *conn, 1), readers: make(chan *conn, o.readers), all: []*conn{w}, closed: make(chan struct{})}
	if err := setWAL(w.db); err != nil {
		d.closeNow()
		return nil, err
	}
	for range o.readers {
		r, err := openConn(o, true)
		if err != nil {
			d.closeNow()
			return nil, fmt.Errorf("open a reader: %w", err)
		}
		d.all = append(d.all, r)
		d.readers <- r
	}
	d.writer <- w
	return d, nil
}

func setWAL(db *sqlite3.Conn) error {
	stmt, _, err := db.Prepare("PRAGMA journal_mode = WAL")
	if err != nil {
		return err
	}
	defer stmt.Close()
	if !stmt.Step() {
		if err := stmt.Err(); err != nil {
			return fmt.Errorf("switch to WAL: %w", err)
		}
	}
	if mode := stmt.ColumnText(0); mode != "wal" {
		return fmt.Errorf("switch to WAL: the database stays in %q journal mode", mode)
	}
	return nil
}

// acquire takes a connection from pool, waiting at most until ctx ends.
func acquire(ctx context.Context, pool chan *conn) (*conn, error) {
	select {
	case c := <-pool:
		return c, nil
	default:
	}
	select {
	case c := <-pool:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stmt returns the prepared statement for sql on c.
func (c *conn) stmt(sql string) (*sqlite3.Stmt, error) {
	if s := c.stmts[sql]; s != nil {
		return s, nil
	}
	s, _, err := c.db.PrepareFlags(sql, sqlite3.PREPARE_PERSISTENT)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errors.New("no statement")
	}
	c.stmts[sql] = s
	return s, nil
}

// close waits for every connection to come back, then closes them; a
// replaced configuration's requests finish on the connections they hold.
// It returns at once; d.closed says when it is done.
func (d *database) close() {
	d.closing.Do(func() {
		go func() {
			<-d.writer
			for range cap(d.readers) {
				<-d.readers
			}
			d.closeNow()
			close(d.closed)
		}()
	})
}

// closeNow closes every connection at once (none is in use): the readers
// first, the writer last. Only the last connection to close folds the WAL
// back into the file and removes it and the -shm index, and a read-only
// connection cannot.
func (d *database) closeNow() {
	for _, c := range slices.Backward(d.all) { // d.all[0] is the writer
		for _, s := range c.stmts {
			s.Close()
		}
		c.db.Close()
	}
}

// migration is one SQL script applied once: the schema attribute, or a
// file of the migrations directory.
type migration struct {
	name string // "schema" or the file name
	sql  string
}

func (m migration) sum() string {
	h := sha256.Sum256([]byte(m.sql))
	return hex.EncodeToString(h[:])
}

// migrationsTable records what has been applied, so each script runs once
// however often the plugin starts.
const migrationsTable = `CREATE TABLE IF NOT EXISTS _socketd_migrations (
  name    TEXT PRIMARY KEY,
  sha256  TEXT NOT NULL,
  applied TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)`

// readMigrations lists the *.sql files of dir in name order.
func readMigrations(dir string) ([]migration, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// migrationError is a script that failed, or an order that cannot be kept.
type migrationError struct {
	name string
	err  error
}

func (e *migrationError) Error() string { return e.name + ": " + e.err.Error() }
func (e *migrationError) Unwrap() error { return e.err }

// migrate applies the scripts not yet recorded, in order, each in its own
// IMMEDIATE transaction together with its record: a script is applied
// whole and recorded, or not at all. Taking the write lock before reading
// the records makes two processes starting at once (a reload's overlap)
// apply each script once. It returns the names of scripts that were applied
// earlier with a different text, which are not applied again.
func migrate(ctx context.Context, db *sqlite3.Conn, scripts []migration) (changed []string, err error) {
	old := db.SetInterrupt(ctx)
	defer db.SetInterrupt(old)
	if err := db.Exec(migrationsTable); err != nil {
		return nil, fmt.Errorf("create _socketd_migrations: %w", err)
	}
	for i, m := range scripts {
		applied, err := applyOne(db, m, scripts[i+1:])
		if err != nil {
			return changed, err
		}
		if applied != "" && applied != m.sum() {
			changed = append(changed, m.name)
		}
	}
	return changed, nil
}

// applyOne applies m unless it is recorded; it returns the recorded sum.
// later are the scripts after m: one of them already applied while m is not
// means m was added out of order.
func applyOne(db *sqlite3.Conn, m migration, later []migration) (applied string, err error) {
	tx, err := db.BeginImmediate()
	if err != nil {
		return "", fmt.Errorf("lock the database: %w", err)
	}
	defer tx.End(&err)
	sum, err := recorded(db, m.name)
	if err != nil || sum != "" {
		return sum, err
	}
	for _, l := range later {
		if s, err := recorded(db, l.name); err != nil {
			return "", err
		} else if s != "" {
			return "", &migrationError{m.name, fmt.Errorf("it is new, but %s, which sorts after it, is already applied; migrations apply in name order, so rename it to sort last", l.name)}
		}
	}
	if err := db.Exec(m.sql); err != nil {
		return "", &migrationError{m.name, err}
	}
	ins, _, err := db.Prepare("INSERT INTO _socketd_migrations (name, sha256) VALUES (?, ?)")
	if err != nil {
		return "", err
	}
	defer ins.Close()
	ins.BindText(1, m.name)
	ins.BindText(2, m.sum())
	return "", ins.Exec()
}

func recorded(db *sqlite3.Conn, name string) (string, error) {
	q, _, err := db.Prepare("SELECT sha256 FROM _socketd_migrations WHERE name = ?")
	if err != nil {
		return "", err
	}
	defer q.Close()
	q.BindText(1, name)
	if q.Step() {
		return q.ColumnText(0), nil
	}
	return "", q.Err()
}

// scratchCopy is what `socketd validate` checks against: an in-memory
// database holding the real one's schema (tables, views, indexes and
// triggers, without their rows) and its migration records, so the scripts
// not yet applied and every route's SQL are checked as a start would check
// them, while the file on disk is only read, or not even created when it
// does not exist yet. A script that fails only on existing rows (a NOT
// NULL column added without a default) passes here and fails at start.
func scratchCopy(o dbOptions) (*sqlite3.Conn, error) {
	mem := o
	mem.path = ":memory:"
	c, err := openConn(mem, false) // the settings every connection has
	if err != nil {
		return nil, err
	}
	scratch := c.db
	if _, err := os.Stat(o.path); errors.Is(err, os.ErrNotExist) {
		// A start would create it; its folder must be there.
		if fi, err := os.Stat(filepath.Dir(o.path)); err != nil || !fi.IsDir() {
			scratch.Close()
			return nil, fmt.Errorf("the folder %s does not exist", filepath.Dir(o.path))
		}
		return scratch, nil
	}
	real, err := sqlite3.OpenFlags(readOnlyURI(o.path), sqlite3.OPEN_READONLY|sqlite3.OPEN_URI)
	if err == nil {
		// A running socketd may be checkpointing: wait as its readers do.
		if err = real.BusyTimeout(o.busyTimeout); err == nil {
			err = copySchema(real, scratch)
		}
		real.Close()
	}
	if err != nil {
		scratch.Close()
		return nil, err
	}
	return scratch, nil
}

// copySchema recreates src's schema in dst, in creation order, and copies
// src's migration records.
func copySchema(src, dst *sqlite3.Conn) error {
	q, _, err := src.Prepare(`SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY rowid`)
	if err != nil {
		return err
	}
	defer q.Close()
	for q.Step() {
		kind, name, sql := q.ColumnText(0), q.ColumnText(1), q.ColumnText(2)
		// A virtual table made its shadow tables already.
		if kind == "table" && exists(dst, name) {
			continue
		}
		if err := dst.Exec(sql); err != nil {
			return fmt.Errorf("copy the schema of %s %s: %w", kind, name, err)
		}
	}
	if err := q.Err(); err != nil {
		return err
	}
	if !exists(dst, "_socketd_migrations") {
		return nil
	}
	rows, _, err := src.Prepare("SELECT name, sha256 FROM _socketd_migrations")
	if err != nil {
		return err
	}
	defer rows.Close()
	ins, _, err := dst.Prepare("INSERT INTO _socketd_migrations (name, sha256) VALUES (?, ?)")
	if err != nil {
		return err
	}
	defer ins.Close()
	for rows.Step() {
		ins.BindText(1, rows.ColumnText(0))
		ins.BindText(2, rows.ColumnText(1))
		if err := ins.Exec(); err != nil {
			return err
		}
	}
	return rows.Err()
}

// exists reports whether db's schema has an object called name.
func exists(db *sqlite3.Conn, name string) bool {
	q, _, err := db.Prepare("SELECT 1 FROM sqlite_schema WHERE name = ?")
	if err != nil {
		return false
	}
	defer q.Close()
	q.BindText(1, name)
	return q.Step()
}

// readOnlyURI names the file for a read that leaves no trace. A WAL
// database open elsewhere has its -wal file, which the read uses (the
// latest commits may be there). Without one, nothing has the database
// open, and a plain read-only open would create -wal and -shm files, so
// the file is read as immutable: no lock, no side file.
func readOnlyURI(path string) string {
	q := "mode=ro"
	if _, err := os.Stat(path + "-wal"); err != nil {
		q += "&immutable=1"
	}
	return (&url.URL{Scheme: "file", Path: path, RawQuery: q}).String()
}
