package status

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

var screenshots = flag.String("screenshots", "", "keep the headless Chromium screenshots of the status page in this directory")

// chromium returns the path of Debian's chromium, skipping the test when it
// is absent (failing under CI, where it must be installed).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (CI is set, so this is a failure)")
	}
	t.Skip("chromium is not installed")
	return ""
}

// servePage serves page at /status from a test server on 127.0.0.1 and
// returns its URL.
func servePage(t *testing.T, page []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL + "/status"
}

// chromiumArgs are the flags of every headless run: no sandbox (tests run
// as root), no network of its own, a fresh profile in dir.
func chromiumArgs(dir string) []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile"),
	}
}

// TestBrowserDOM loads the page of a hostile Report in headless Chromium
// and reads back the DOM the browser built: the hostile strings must be
// text, not elements, and the table must keep its four repositories.
func TestBrowserDOM(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bin := chromium(t)
	var page bytes.Buffer
	if err := WriteHTML(&page, hostile()); err != nil {
		t.Fatal(err)
	}
	url := servePage(t, page.Bytes())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(chromiumArgs(t.TempDir()), "--dump-dom", url)...)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, stderr.Bytes())
	}
	lower := bytes.ToLower(dom)
	for _, bad := range []string{"<script", "<img", "<b>session", "<i>kind", `href="javascript:`} {
		if bytes.Contains(lower, []byte(bad)) {
			t.Errorf("the browser's DOM contains %q", bad)
		}
	}
	if m := regexp.MustCompile(`<[a-z][^<>]*\bon[a-z]+=`).Find(lower); m != nil {
		t.Errorf("the browser's DOM has an event handler attribute: %s", m)
	}
	for _, want := range []string{
		"&lt;script&gt;alert('name')&lt;/script&gt;",
		"&lt;/div&gt;&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;alert('err')&lt;/script&gt;&lt;!--",
	} {
		if !bytes.Contains(dom, []byte(want)) {
			t.Errorf("the browser's DOM lacks the text %q", want)
		}
	}
	if n := bytes.Count(dom, []byte(`<tr class="repo `)); n != 4 {
		t.Errorf("the browser's DOM has %d repository rows, want 4", n)
	}
}

// TestScreenshot renders the fixture's page in headless Chromium, wide and
// narrow, from a 127.0.0.1 server, and checks that a PNG of the window's
// size comes out.
func TestScreenshot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bin := chromium(t)
	var page bytes.Buffer
	if err := WriteHTML(&page, fixture()); err != nil {
		t.Fatal(err)
	}
	url := servePage(t, page.Bytes())

	for _, size := range []struct{ w, h int }{{1280, 900}, {420, 900}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			dir := t.TempDir()
			shot := filepath.Join(dir, "status.png")
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			args := append(chromiumArgs(dir), "--hide-scrollbars", "--screenshot="+shot,
				fmt.Sprintf("--window-size=%d,%d", size.w, size.h), url)
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.WaitDelay = 5 * time.Second
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("chromium: %v\n%s", err, out)
			}
			f, err := os.Open(shot)
			if err != nil {
				t.Fatalf("no screenshot: %v\nchromium said:\n%s", err, out)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatalf("decode screenshot: %v", err)
			}
			if b := img.Bounds(); b.Dx() != size.w || b.Dy() != size.h {
				t.Errorf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), size.w, size.h)
			}
			if *screenshots != "" {
				keep := filepath.Join(*screenshots, fmt.Sprintf("status-%d.png", size.w))
				data, err := os.ReadFile(shot)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(keep, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
