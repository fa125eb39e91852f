package conf

import (
	"reflect"
	"strings"
	"testing"
)

// TestEffectiveRoundTrip checks that the effective configuration parses
// back to the same configuration and names the served URLs.
func TestEffectiveRoundTrip(t *testing.T) {
	t.Setenv(RedisPasswordEnv, "not-written")
	for _, doc := range []string{"[server]\nmirror_base = \"https://m.example.net/\"\n" + minimal, string(Example()),
		"[server]\nmirror_base = \"https://m.example.net/\"\n[cache.redis]\nurl = \"redis://10.1.1.1:6379/0\"\n" + minimal +
			"[[repository]]\nname = \"rev\"\norigin = \"http://10.0.0.1/rrdp/notification.xml\"\nmode = \"reverse\"\nhosts = [\"rrdp.example.net\"]\nformats = [\"xml\"]\n"} {
		c := mustParse(t, doc)
		eff := c.Effective()
		if strings.Contains(string(eff), "not-written") {
			t.Fatalf("the effective configuration shows the password:\n%s", eff)
		}
		for i := range c.Repositories {
			for _, u := range c.URLs(&c.Repositories[i]) {
				if !strings.Contains(string(eff), "#   "+u+"\n") {
					t.Errorf("the effective configuration does not name %s:\n%s", u, eff)
				}
			}
		}
		back, err := Parse(eff, "test.toml")
		if err != nil {
			t.Fatalf("Parse(Effective()): %v\n%s", err, eff)
		}
		if !reflect.DeepEqual(back, c) {
			t.Errorf("round trip differs:\ngot  %+v\nwant %+v", back, c)
		}
	}
}
