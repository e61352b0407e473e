package internal

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/backchannel/backchannel/internal/"

// layers gives each group of internal/ its height: a package may import
// from a lower height or from its own group. Groups at one height may not
// import each other.
var layers = map[string]int{
	"base":     0,
	"packet":   1,
	"link":     2,
	"pki":      3,
	"relay":    4,
	"endtoend": 4,
	"client":   5,
	"features": 6,
	"ui":       7,
	"tools":    8,
}

// TestLayers checks every import of every non-test file under internal/
// against the layers, so that the tree keeps showing the architecture.
func TestLayers(t *testing.T) {
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || !strings.Contains(path, "/") {
			return nil
		}
		from := strings.SplitN(filepath.ToSlash(path), "/", 2)[0]
		fromHeight, ok := layers[from]
		if !ok {
			t.Errorf("%s is in a group with no layer (internal/%s): add it to layers and to doc.go", path, from)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			rest, ok := strings.CutPrefix(p, module)
			if !ok {
				continue
			}
			checked++
			to := strings.SplitN(rest, "/", 2)[0]
			toHeight, known := layers[to]
			switch {
			case !known:
				t.Errorf("%s imports %s, in a group with no layer", path, p)
			case to == from:
			case toHeight >= fromHeight:
				t.Errorf("%s (%s, height %d) imports %s (%s, height %d): only lower layers may be imported", path, from, fromHeight, p, to, toHeight)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d imports checked: is the walk finding the packages?", checked)
	}
}

// TestSizes keeps files and functions small enough to read whole: no
// non-test file of the module over 500 lines, no function over 100.
func TestSizes(t *testing.T) {
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if lines := fset.File(f.Pos()).LineCount(); lines > 500 {
			t.Errorf("%s has %d lines: split it by responsibility", path, lines)
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Body != nil {
				if n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line; n > 100 {
					t.Errorf("%s: %s has %d lines", path, fn.Name.Name, n)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
