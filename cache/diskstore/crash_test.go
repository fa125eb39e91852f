package diskstore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
)

const (
	crashDirEnv  = "DISKSTORE_CRASH_DIR"
	crashSeedEnv = "DISKSTORE_CRASH_SEED"
)

// TestMain runs the publishing child of TestCrash when the environment
// asks for it, and the tests otherwise.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
		if err := publishForever(dir, seed); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return
	}
	os.Exit(m.Run())
}

// publishForever publishes heads of three repositories into dir, blobs first
// and head last, with files retained and expiring, under a cap that drops
// retained files, and collects garbage now and then, until it is killed. It prints "ready" once the store is open and
// "head N" after each head it wrote, N the files the cap dropped so far.
func publishForever(dir string, seed uint64) error {
	ctx := context.Background()
	// The cap is below what three repositories with retention hold, and
	// now and then below their current state: heads are rewritten and
	// blobs removed all the time. The grace protects the blobs of the
	// publish in progress from the cap.
	s, err := Open(Config{Dir: dir, Grace: time.Minute, MaxBytes: 2 << 20})
	if err != nil {
		return err
	}
	heads, err := s.Heads(ctx)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	r := rand.New(rand.NewPCG(seed, 99))
	for i := 0; ; i++ {
		repo := fmt.Sprintf("https://rrdp%d.example.net/notification.xml", i%3)
		h := &cache.Head{Repo: repo, Session: "s", Serial: uint64(i), Time: time.Now()}
		h.NotificationXML, _ = blob(r, 200+r.IntN(2000))
		for j := range 1 + r.IntN(3) {
			b, sum := blob(r, 1+r.IntN(300_000))
			if err := s.PutBlob(ctx, sum, b); err != nil {
				return err
			}
			h.Files = append(h.Files, file(fmt.Sprintf("f%d-%d", i, j), sum, len(b), time.Time{}))
		}
		// The previous current files are retained, some already expired.
		if old := heads[repo]; old != nil {
			for _, f := range old.Files {
				if f.Expires.IsZero() {
					f.Expires = time.Now().Add(time.Duration(r.IntN(3)-1) * time.Hour)
					h.Files = append(h.Files, f)
				}
			}
		}
		if err := s.PutHead(ctx, repo, h); err != nil {
			return err
		}
		heads[repo] = h
		fmt.Println("head", s.Cap().Evictions)
		if i%5 == 4 {
			if _, err := s.GC(ctx); err != nil {
				return err
			}
		}
	}
}

// TestCrash kills a publishing child with SIGKILL at many different moments
// and checks after each kill that the directory holds a whole state: every
// head reads, every blob a live file names exists and hashes to its name,
// and temporary files are never taken for data.
func TestCrash(t *testing.T) {
	kills := 50
	if testing.Short() {
		kills = 10
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(2026, 11))
	temps, maxHeads := 0, 0
	var dropped atomic.Bool
	for k := range kills {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.Itoa(k))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(out)
		line, err := br.ReadString('\n')
		if err != nil || line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("kill %d: child said %q, %v; stderr: %s", k, line, err, stderr.String())
		}
		// The moment of the kill: after a deterministic, varied number of
		// heads (the first child always writes one of each repository, so
		// the test does not depend on the machine's speed), then a varied
		// delay. A goroutine drains the child's output so it never blocks.
		heads := make(chan struct{}, 1<<16)
		go func() {
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					close(heads)
					return
				}
				if n, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "head ")), 10, 64); err == nil && n > 0 {
					dropped.Store(true)
				}
				heads <- struct{}{}
			}
		}()
		wait := r.IntN(5)
		if k == 0 {
			wait = 3
		}
		for range wait {
			if _, ok := <-heads; !ok {
				t.Fatalf("kill %d: child stopped before its heads; stderr: %s", k, stderr.String())
			}
		}
		time.Sleep(time.Duration(r.IntN(20_000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", k, err)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("kill %d: child ended by itself (%v); stderr: %s", k, err, stderr.String())
		}
		temps += countTemps(t, dir)
		n := checkState(t, dir, k)
		maxHeads = max(maxHeads, n)
	}
	if !dropped.Load() {
		t.Errorf("the cap never dropped a file in %d kills", kills)
	}
	if maxHeads != 3 {
		t.Errorf("heads after %d kills: got %d, want 3 (the child never got far?)", kills, maxHeads)
	}
	t.Logf("%d SIGKILLs, each followed by a whole state; %d temporary files left by them, none read as data", kills, temps)
}

func countTemps(t *testing.T, dir string) int {
	n := 0
	for _, d := range []string{blobDir, headDir} {
		ents, err := os.ReadDir(filepath.Join(dir, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), tmpStart) {
				n++
			}
		}
	}
	return n
}

// checkState reads dir as a restarted node would and reports the heads.
func checkState(t *testing.T, dir string, k int) int {
	t.Helper()
	ctx := context.Background()
	// Read before Open's clean-up too: listing must skip temporary files.
	for _, clean := range []bool{false, true} {
		s := &Store{dir: dir}
		if clean {
			var err error
			if s, err = Open(Config{Dir: dir}); err != nil {
				t.Fatalf("kill %d: Open: %v", k, err)
			}
			if n := countTemps(t, dir); n != 0 {
				t.Fatalf("kill %d: %d temporary files after Open", k, n)
			}
		}
		sums, _, err := s.Blobs()
		if err != nil {
			t.Fatalf("kill %d: Blobs: %v", k, err)
		}
		for _, sum := range sums {
			b, err := s.GetBlob(ctx, sum)
			if err != nil {
				t.Fatalf("kill %d: GetBlob(%x): %v", k, sum[:8], err)
			}
			if sha256.Sum256(b) != sum {
				t.Fatalf("kill %d: blob %x: torn, %d bytes do not hash to its name", k, sum[:8], len(b))
			}
		}
		heads, err := s.Heads(ctx)
		if err != nil {
			t.Fatalf("kill %d: Heads: %v", k, err)
		}
		for repo, h := range heads {
			if h.Repo != repo {
				t.Fatalf("kill %d: head of %s names repo %s", k, repo, h.Repo)
			}
			for _, f := range h.Files {
				if !f.Expires.IsZero() && time.Now().After(f.Expires) {
					continue // expired: GC may have taken it
				}
				b, err := s.GetBlob(ctx, f.Sum)
				if err != nil {
					t.Fatalf("kill %d: head of %s serial %d names %s: %v", k, repo, h.Serial, f.Path, err)
				}
				if int64(len(b)) != f.Size || sha256.Sum256(b) != f.Sum {
					t.Fatalf("kill %d: head of %s names %s: got %d bytes, want %d with its sum", k, repo, f.Path, len(b), f.Size)
				}
			}
		}
		if clean {
			return len(heads)
		}
	}
	return 0
}
