// Package console is the operators' web console served at /console: server-rendered pages
// whose scripts read and change the project through the public REST API only, with the API key
// the operator signs in with. It holds no credential of its own and calls no core service, so it
// can never do what the key could not.
package console

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// csp lets the console load its own scripts and styles and talk to its own origin, nothing more:
// no inline script or style, no other origin, no framing (the REST face's default-src 'none'
// would block the pages' own files).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Page is one screen of the console.
type Page struct {
	Path  string // under /console/
	Title string
	Name  string // template name and script name
}

// Pages is the navigation, in order.
var Pages = []Page{
	{"", "Overview", "overview"},
	{"states", "States", "states"},
	{"leases", "Leases", "leases"},
	{"tokens", "Tokens and keys", "tokens"},
	{"claims", "Claims", "claims"},
	{"conversations", "Conversations", "conversations"},
	{"signin", "Sign in", "signin"},
}

// Handler serves the console; mount it at /console.
func Handler() http.Handler {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/console/static/", http.FileServer(http.FS(static)))
	// Each page is the layout with the page's own "content" template.
	byPath := map[string]*template.Template{}
	for _, p := range Pages {
		byPath[p.Path] = template.Must(template.ParseFS(templateFS,
			"templates/layout.html", "templates/"+p.Name+".html"))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "Method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/console/static/") {
			w.Header().Set("Cache-Control", "no-cache")
			files.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/console" {
			http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
			return
		}
		path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/console/"), "/")
		tmpl, ok := byPath[path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = tmpl.ExecuteTemplate(w, "layout.html", map[string]any{"Page": pageAt(path), "Pages": Pages[:len(Pages)-1]})
	})
}

func pageAt(path string) Page {
	for _, p := range Pages {
		if p.Path == path {
			return p
		}
	}
	return Page{}
}
