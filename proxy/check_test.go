package proxy

import (
	"errors"
	"testing"
)

// TestCheckRepos: the checks New and SetRepos make, as conf calls them:
// https bases unless AllowHTTPBase, and unique routes.
func TestCheckRepos(t *testing.T) {
	rev := func(name, origin, base string, hosts ...string) Repo {
		return Repo{Name: name, Origin: origin, Base: base, Hosts: hosts}
	}
	mir := func(name, origin, base string) Repo {
		return Repo{Name: name, Origin: origin, Mode: ModeMirror, Base: base}
	}
	const o1, o2 = "https://o.example/rrdp/notification.xml", "https://p.example/rrdp/notification.xml"
	tests := []struct {
		name      string
		repos     []Repo
		allowHTTP bool
		ok        bool
	}{
		{"https base", []Repo{rev("a", o1, "https://a.example/rrdp/", "a.example")}, false, true},
		{"http base", []Repo{rev("a", o1, "http://a.example/rrdp/", "a.example")}, false, false},
		{"http base opted in", []Repo{rev("a", o1, "http://a.example/rrdp/", "a.example")}, true, true},
		{"http mirror base opted in", []Repo{mir("a", o1, "http://m.example/o.example/rrdp/")}, true, true},
		{"host twice", []Repo{rev("a", o1, "", "a.example", "a.example")}, false, false},
		{"host in two repositories", []Repo{rev("a", o1, "https://a.example/rrdp/", "a.example", "b.example"),
			rev("b", o2, "https://b.example/rrdp/", "b.example")}, false, false},
		{"host with and without port", []Repo{rev("a", o1, "https://a.example/rrdp/", "a.example:8443"),
			rev("b", o2, "https://a.example/rrdp/", "a.example")}, false, true},
		{"same mirror path", []Repo{mir("a", o1, "https://m.example/o.example/rrdp/"),
			mir("b", o2, "https://n.example/o.example/rrdp/")}, false, false},
		{"name twice", []Repo{rev("a", o1, "", "a.example"), rev("a", o2, "", "b.example")}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Repos: tt.repos, AllowHTTPBase: tt.allowHTTP}
			err := c.CheckRepos()
			if tt.ok && err != nil {
				t.Errorf("got %v, want no error", err)
			}
			if !tt.ok && !errors.Is(err, ErrConfig) {
				t.Errorf("got %v, want ErrConfig", err)
			}
		})
	}
}
