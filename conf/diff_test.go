package conf

import (
	"reflect"
	"testing"
)

func TestCompare(t *testing.T) {
	old := mustParse(t, `[server]
mirror_base = "https://m.example.net/"
[[repository]]
name = "ripe"
origin = "https://rrdp.ripe.net/notification.xml"
[[repository]]
name = "arin"
origin = "https://rrdp.arin.net/notification.xml"
[[repository]]
name = "apnic"
origin = "https://rrdp.apnic.net/notification.xml"
`)
	if d := Compare(old, old); !d.Empty() {
		t.Errorf("same configuration: got %+v, want no change", d)
	}
	new := mustParse(t, `[server]
mirror_base = "https://mirror.example.net/"
[[repository]]
name = "lacnic"
origin = "https://rrdp.lacnic.net/rrdp/notification.xml"
[[repository]]
name = "arin"
origin = "https://rrdp.arin.net/notification.xml"
poll_interval = "5m"
[[repository]]
name = "apnic"
origin = "https://rrdp.apnic.net/notification.xml"
`)
	got := Compare(old, new)
	want := Diff{Added: []string{"lacnic"}, Removed: []string{"ripe"}, Changed: []string{"arin", "apnic"}, Server: true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
