package filtertool

import (
	"bytes"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/sluiceproxy/sluice/plugins/filtertool/internal/sdkfiles"
)

//go:embed templates
var templates embed.FS

// NewOptions are the inputs of `sluice filter new`.
type NewOptions struct {
	// Name is the filter's name: the folder, the module file (Name.wasm),
	// the Go module and the Rust crate. Lower case letters, digits and _,
	// starting with a letter.
	Name string
	// Lang is "tinygo", "go" or "rust".
	Lang string
	// Dir is the folder to create; default Name, in the working directory.
	Dir string
	// Sluice is the sluice binary the project's Makefile runs; default the
	// running executable.
	Sluice string
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// projectData is what the templates see.
type projectData struct {
	Name, Type, Lang, LangName, Sluice, Dir, SDKNote string
}

// New writes a filter project: a source file with a request hook and a
// message hook, a Makefile whose `make` builds the module with the
// toolchains the proxy's setup installs and whose `make test` runs the
// cases file with `sluice filter test`, a README, and beside them the
// SDK's sources, so the project builds wherever it is, with no published
// module and no network. It returns the exit status.
func New(o NewOptions, stdout, stderr io.Writer) int {
	if err := newProject(o, stdout); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func newProject(o NewOptions, stdout io.Writer) error {
	if !validName.MatchString(o.Name) {
		return fmt.Errorf("filtertool: name %q: use lower case letters, digits and _, starting with a letter", o.Name)
	}
	d := projectData{Name: o.Name, Type: typeName(o.Name), Lang: o.Lang, Sluice: o.Sluice}
	var sdkDir string
	switch o.Lang {
	case "tinygo":
		d.LangName, sdkDir, d.SDKNote = "Go, built with TinyGo", "go", "`go.mod` points at it with a `replace`"
	case "go":
		d.LangName, sdkDir, d.SDKNote = "Go", "go", "`go.mod` points at it with a `replace`"
	case "rust":
		d.LangName, sdkDir, d.SDKNote = "Rust", "rust", "`Cargo.toml` depends on it by path"
	default:
		return fmt.Errorf("filtertool: -lang %q: want tinygo, go or rust", o.Lang)
	}
	if d.Sluice == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("filtertool: %w", err)
		}
		d.Sluice = exe
	}
	dir := o.Dir
	if dir == "" {
		dir = o.Name
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("filtertool: %w", err)
	}
	d.Dir = abs
	if entries, err := os.ReadDir(abs); err == nil && len(entries) > 0 {
		return fmt.Errorf("filtertool: %s exists and is not empty", abs)
	}

	files := map[string]string{}
	tmplDir := "templates/" + sdkDir
	err = fs.WalkDir(templates, tmplDir, func(name string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		out, err := render(name, d)
		if err != nil {
			return err
		}
		files[strings.TrimSuffix(strings.TrimPrefix(name, tmplDir+"/"), ".tmpl")] = out
		return nil
	})
	if err != nil {
		return err
	}
	for name, out := range map[string]string{"README.md": "README.md", "cases.toml": o.Name + ".cases.toml"} {
		s, err := render("templates/common/"+name+".tmpl", d)
		if err != nil {
			return err
		}
		files[out] = s
	}
	files[".gitignore"] = "*.wasm\n/target/\n"
	sdk, err := sdkfiles.Files()
	if err != nil {
		return err
	}
	for _, f := range sdk {
		if strings.Contains(f.Path, "..") || path.IsAbs(f.Path) {
			return fmt.Errorf("filtertool: SDK archive entry %q leaves the project", f.Path)
		}
		if strings.HasPrefix(f.Path, sdkDir+"/") {
			files["sluice-sdk/"+f.Path] = f.Data
		}
	}
	for name, data := range files {
		dst := filepath.Join(abs, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("filtertool: %w", err)
		}
		if err := os.WriteFile(dst, []byte(data), 0o644); err != nil {
			return fmt.Errorf("filtertool: %w", err)
		}
	}
	fmt.Fprintf(stdout, "created %s (%s)\n\n  cd %s\n  make          # builds %s.wasm\n  make test     # runs %s.cases.toml against it\n",
		abs, d.LangName, dir, o.Name, o.Name)
	return nil
}

func render(name string, d projectData) (string, error) {
	src, err := templates.ReadFile(name)
	if err != nil {
		return "", err
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", fmt.Errorf("filtertool: template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("filtertool: template %s: %w", name, err)
	}
	return b.String(), nil
}

// typeName turns a filter's name into a Rust type name: "rate_limit" is
// "RateLimit".
func typeName(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	if b.Len() == 0 {
		return "Filter"
	}
	return b.String()
}
