package sdkfiles

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Collect reads the files of the SDK directory dir (the repository's sdk/)
// that a filter project needs: everything under go/ and rust/ except tests,
// build output and editor leftovers.
func Collect(dir string) ([]File, error) {
	var files []File
	for _, top := range []string{"go", "rust"} {
		root := filepath.Join(dir, top)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			rel = filepath.ToSlash(rel)
			if d.IsDir() {
				switch d.Name() {
				case "target", "tests", "testdata":
					return filepath.SkipDir
				}
				return nil
			}
			if !wanted(rel) {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files = append(files, File{Path: rel, Data: string(data)})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

func wanted(rel string) bool {
	name := filepath.Base(rel)
	switch {
	case strings.HasSuffix(name, "_test.go"):
		return false
	case strings.HasSuffix(name, ".go"), strings.HasSuffix(name, ".rs"), strings.HasSuffix(name, ".md"):
		return true
	case name == "go.mod", name == "Cargo.toml", name == "Cargo.lock":
		return true
	}
	return false
}
