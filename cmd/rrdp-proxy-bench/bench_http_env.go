package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// benchEnv is nginx serving a repository's files from disk and rrdp-proxy,
// in this process, serving the state it followed from that nginx.
type benchEnv struct {
	tmp     string     // removed by close
	overlay string     // what nginx serves: links to the repository's files, the notification rewritten, .gz files
	origin  *rp.Origin // nginx
	client  *upstream.Client
	cache   *cache.Cache
	srv     *proxy.Server
	served  chan error // Serve's result
	head    *follow.Head

	nginxURL string // http://127.0.0.1:PORT/, plain HTTP, for wrk
	proxyURL string // http://127.0.0.1:PORT/
	// Paths of the files compared, on each server; the snapshot is the
	// same bytes on both.
	nginxNotif, nginxSnap string
	proxyNotif, proxySnap string
	proxyNotifBin         string
	proxySnapBin          string
	snapSize              int64
}

// benchEnvConfig configures startBenchEnv.
type benchEnvConfig struct {
	Repo    string // the generated repository's directory
	Workers int    // nginx's worker_processes
	Gzip    bool   // write .gz files for nginx's gzip_static
	Nginx   string // the nginx binary
}

// startBenchEnv starts nginx and the proxy for the repository in
// cfg.Repo and waits until the proxy serves the repository's state.
func startBenchEnv(ctx context.Context, cfg benchEnvConfig) (_ *benchEnv, err error) {
	e := &benchEnv{}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.tmp, err = os.MkdirTemp("", "rrdp-proxy-bench-http-"); err != nil {
		return nil, fmt.Errorf("start benchmark: %w", err)
	}
	notifRel, notif, err := findNotification(cfg.Repo)
	if err != nil {
		return nil, err
	}
	oldBase, err := repoBase(notif.Snapshot.URI, notifRel)
	if err != nil {
		return nil, err
	}
	e.overlay = filepath.Join(e.tmp, "www")
	if err := linkTree(e.overlay, cfg.Repo, notifRel); err != nil {
		return nil, err
	}
	pki, err := rp.NewPKI(e.tmp, rp.PKIConfig{})
	if err != nil {
		return nil, fmt.Errorf("start benchmark: %w", err)
	}
	e.origin, err = rp.NewOrigin(rp.OriginConfig{
		Dir: e.overlay, PKI: pki, NoIPv6: true, Nginx: true, NginxBinary: cfg.Nginx,
		NginxBench: &rp.NginxBench{Workers: cfg.Workers, HTTP: true, GzipStatic: cfg.Gzip},
	})
	if err != nil {
		return nil, fmt.Errorf("start benchmark: %w", err)
	}
	e.nginxURL = e.origin.HTTPURL()
	// The repository names its files at the URL it was generated for:
	// nginx serves the notification rewritten to name them at nginx, as a
	// reverse proxy reaches its publication server by an internal name.
	notifXML, err := os.ReadFile(filepath.Join(cfg.Repo, notifRel))
	if err != nil {
		return nil, fmt.Errorf("start benchmark: %w", err)
	}
	notifXML = bytes.ReplaceAll(notifXML, []byte(oldBase), []byte(e.origin.URL()))
	if err := os.WriteFile(filepath.Join(e.overlay, notifRel), notifXML, 0o644); err != nil {
		return nil, fmt.Errorf("start benchmark: %w", err)
	}
	e.nginxNotif = "/" + notifRel
	e.nginxSnap = "/" + strings.TrimPrefix(notif.Snapshot.URI, oldBase)

	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		return nil, fmt.Errorf("start benchmark: %w", err)
	}
	if e.client, err = upstream.New(upstream.Config{CAPEM: ca}); err != nil {
		return nil, fmt.Errorf("start benchmark: %w", err)
	}
	if e.cache, err = cache.New(cache.Config{}); err != nil {
		return nil, fmt.Errorf("start benchmark: %w", err)
	}
	origin := e.origin.URL() + notifRel
	base, err := proxy.BaseURI(proxy.ModeReverse, origin, "")
	if err != nil {
		return nil, fmt.Errorf("start benchmark: %w", err)
	}
	fl, err := follow.New(follow.Config{URL: origin, Client: e.client, Store: e.cache, Base: base})
	if err != nil {
		return nil, fmt.Errorf("start benchmark: %w", err)
	}
	if _, err := fl.Sync(ctx); err != nil {
		return nil, fmt.Errorf("start benchmark: follow %s: %w", origin, err)
	}
	e.head = fl.Head()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start benchmark: %w", err)
	}
	e.proxyURL = "http://" + ln.Addr().String() + "/"
	e.srv, err = proxy.New(proxy.Config{
		Repos: []proxy.Repo{{Name: "bench", Origin: origin, Mode: proxy.ModeReverse, Base: base,
			Hosts: []string{"localhost", "127.0.0.1"}, Stats: fl.Stats}},
		Cache: e.cache,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("start benchmark: %w", err)
	}
	e.served = make(chan error, 1)
	go func() { e.served <- e.srv.Serve(ln) }()

	prefix := base[strings.Index(base[len("https://"):], "/")+len("https://"):]
	e.proxyNotif = prefix + notifRel[strings.LastIndexByte(notifRel, '/')+1:]
	e.proxyNotifBin = strings.TrimSuffix(e.proxyNotif, ".xml") + ".bin"
	for _, f := range e.head.Files {
		if f.Gzip || f.Kind != rrdpxml.KindSnapshot || !f.Expires.IsZero() {
			continue
		}
		switch f.Format {
		case irpki.FormatXML:
			e.proxySnap, e.snapSize = prefix+f.Path, f.Size
		case irpki.FormatBin:
			e.proxySnapBin = prefix + f.Path
		}
	}
	if e.proxySnap == "" || e.proxySnapBin == "" {
		return nil, errors.New("start benchmark: the proxy's head has no snapshot")
	}
	if err := e.check(ctx, notifRel, notifXML, cfg.Gzip); err != nil {
		return nil, err
	}
	return e, nil
}

// check waits until the proxy serves its notification, compares the
// snapshot both servers send, and writes the .gz files nginx's
// gzip_static serves: the notification compressed as the proxy
// compresses its own (compress/gzip, best compression), the snapshot as
// the exact bytes the proxy sends with Content-Encoding: gzip.
func (e *benchEnv) check(ctx context.Context, notifRel string, notifXML []byte, gz bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _, err := benchGet(ctx, e.proxyURL+e.proxyNotif[1:], "")
		if err == nil && bytes.Equal(b, e.head.NotificationXML) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start benchmark: proxy does not serve its notification after 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	ps, _, err := benchGet(ctx, e.proxyURL+e.proxySnap[1:], "")
	if err != nil {
		return fmt.Errorf("start benchmark: %w", err)
	}
	ns, _, err := benchGet(ctx, e.nginxURL+e.nginxSnap[1:], "")
	if err != nil {
		return fmt.Errorf("start benchmark: %w", err)
	}
	if sha256.Sum256(ps) != sha256.Sum256(ns) {
		return fmt.Errorf("start benchmark: the proxy's snapshot (%d bytes) differs from nginx's (%d bytes)", len(ps), len(ns))
	}
	if !gz {
		return nil
	}
	gzSnap, enc, err := benchGet(ctx, e.proxyURL+e.proxySnap[1:], "gzip")
	if err != nil {
		return fmt.Errorf("start benchmark: %w", err)
	}
	if enc != "gzip" {
		return fmt.Errorf("start benchmark: the proxy answers a gzip request for its snapshot with encoding %q", enc)
	}
	var gzNotif bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gzNotif, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("start benchmark: %w", err)
	}
	_, werr := zw.Write(notifXML)
	if err := errors.Join(werr, zw.Close()); err != nil {
		return fmt.Errorf("start benchmark: gzip notification: %w", err)
	}
	for name, b := range map[string][]byte{notifRel: gzNotif.Bytes(), e.nginxSnap[1:]: gzSnap} {
		if err := os.WriteFile(filepath.Join(e.overlay, name+".gz"), b, 0o644); err != nil {
			return fmt.Errorf("start benchmark: %w", err)
		}
		got, enc, err := benchGet(ctx, e.nginxURL+name, "gzip")
		if err != nil {
			return fmt.Errorf("start benchmark: %w", err)
		}
		if enc != "gzip" || !bytes.Equal(got, b) {
			return fmt.Errorf("start benchmark: nginx does not serve %s.gz for a gzip request (encoding %q, %d bytes)", name, enc, len(got))
		}
	}
	return nil
}

var benchClient = &http.Client{
	Transport: &http.Transport{DisableCompression: true},
	Timeout:   2 * time.Minute,
}

// benchGet fetches url, with Accept-Encoding: ae unless empty, and
// returns the body and the Content-Encoding.
func benchGet(ctx context.Context, url, ae string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", fmt.Errorf("get %s: %w", url, err)
	}
	req.Host = "localhost"
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	resp, err := benchClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<30))
	if err != nil {
		return nil, "", fmt.Errorf("get %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("get %s: status %d", url, resp.StatusCode)
	}
	return b, resp.Header.Get("Content-Encoding"), nil
}

// close stops the proxy and nginx and removes the temporary files.
func (e *benchEnv) close() error {
	var errs []error
	if e.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, e.srv.Shutdown(ctx))
		cancel()
		errs = append(errs, <-e.served)
	}
	if e.cache != nil {
		e.cache.Close()
	}
	if e.client != nil {
		errs = append(errs, e.client.Close())
	}
	if e.origin != nil {
		errs = append(errs, e.origin.Close())
	}
	if e.tmp != "" {
		errs = append(errs, os.RemoveAll(e.tmp))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop benchmark: %w", err)
	}
	return nil
}

// findNotification returns the path of the shallowest notification.xml
// below dir, relative to dir, and its decoded content.
func findNotification(dir string) (string, *rrdpxml.Notification, error) {
	best := ""
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != dir {
			return filepath.SkipDir
		}
		if d.Name() == "notification.xml" && (best == "" || strings.Count(p, "/") < strings.Count(best, "/")) {
			best = p
		}
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("find notification.xml in %s: %w", dir, err)
	}
	if best == "" {
		return "", nil, fmt.Errorf("find notification.xml in %s: none", dir)
	}
	f, err := os.Open(best)
	if err != nil {
		return "", nil, fmt.Errorf("read notification: %w", err)
	}
	defer f.Close()
	n, _, err := rrdpxml.DecodeNotification(f, rrdpxml.Limits{})
	if err != nil {
		return "", nil, fmt.Errorf("read notification %s: %w", best, err)
	}
	rel, err := filepath.Rel(dir, best)
	if err != nil {
		return "", nil, fmt.Errorf("read notification: %w", err)
	}
	return filepath.ToSlash(rel), n, nil
}

// repoBase returns the URL at which the repository was generated to be
// served: the snapshot's URI less the directory part below it that the
// notification shares ("https://localhost:3000/" for
// "https://localhost:3000/rrdp/SESSION/1/X/snapshot.xml" and
// "rrdp/notification.xml").
func repoBase(snapURI, notifRel string) (string, error) {
	dir := notifRel[:strings.LastIndexByte(notifRel, '/')+1]
	scheme := strings.Index(snapURI, "://")
	if scheme < 0 {
		return "", fmt.Errorf("snapshot URI %q is not a URL", snapURI)
	}
	host := strings.IndexByte(snapURI[scheme+3:], '/')
	if host < 0 {
		return "", fmt.Errorf("snapshot URI %q has no path", snapURI)
	}
	base := snapURI[:scheme+3+host+1]
	if !strings.HasPrefix(snapURI, base+dir) {
		return "", fmt.Errorf("snapshot URI %q is not under the notification's directory %q", snapURI, dir)
	}
	return base, nil
}

// linkTree makes dst a tree of directories mirroring src whose files are
// symbolic links to src's, leaving out hidden directories and the file
// skip (relative to src).
func linkTree(dst, src, skip string) error {
	src, err := filepath.Abs(src)
	if err != nil {
		return fmt.Errorf("link %s: %w", src, err)
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != src:
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		case filepath.ToSlash(rel) == skip:
			return nil
		}
		return os.Symlink(p, filepath.Join(dst, rel))
	})
	if err != nil {
		return fmt.Errorf("link %s into %s: %w", src, dst, err)
	}
	return nil
}
