package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks systemd's service notification protocol (sd_notify(3)):
// datagrams of newline-separated KEY=VALUE assignments to the unix socket
// named by NOTIFY_SOCKET ("@" for Linux's abstract namespace). It is about
// forty lines, which is why it is written here rather than taken from
// coreos/go-systemd: that module's daemon package does the same with more
// API than serve needs. A nil *notifier does nothing: serve runs the same
// without systemd.
type notifier struct {
	conn     *net.UnixConn
	watchdog time.Duration // WATCHDOG_USEC; zero: no watchdog
}

// newNotifier returns the notifier that getenv's NOTIFY_SOCKET names, or nil
// when it is unset. The watchdog is on when WATCHDOG_USEC is set and
// WATCHDOG_PID is unset or this process's id.
func newNotifier(getenv func(string) string) (*notifier, error) {
	sock := getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil, nil
	}
	if sock[0] == '@' {
		sock = "\x00" + sock[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("connect to NOTIFY_SOCKET %q: %w", getenv("NOTIFY_SOCKET"), err)
	}
	n := &notifier{conn: conn}
	if us := getenv("WATCHDOG_USEC"); us != "" {
		v, err := strconv.ParseUint(us, 10, 63)
		if err != nil || v == 0 {
			conn.Close()
			return nil, fmt.Errorf("WATCHDOG_USEC %q: want a positive number of microseconds", us)
		}
		if pid := getenv("WATCHDOG_PID"); pid == "" || pid == strconv.Itoa(os.Getpid()) {
			n.watchdog = time.Duration(v) * time.Microsecond
		}
	}
	return n, nil
}

// send writes one notification. systemd reads the socket; a write error
// means it is gone, which is not worth stopping the service for.
func (n *notifier) send(state string) {
	if n == nil {
		return
	}
	n.conn.SetWriteDeadline(time.Now().Add(time.Second))
	n.conn.Write([]byte(state))
}

// ready: the listeners are open and the service serves (also after a
// reload).
func (n *notifier) ready() { n.send("READY=1\nSTATUS=serving") }

// reloading: a reload began; READY=1 follows when it ended. systemd wants
// the time of the start on CLOCK_MONOTONIC.
func (n *notifier) reloading() {
	n.send("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10) + "\nSTATUS=reloading the configuration")
}

// stopping: the drain began.
func (n *notifier) stopping() { n.send("STOPPING=1\nSTATUS=draining connections") }

// startWatchdog sends WATCHDOG=1 at half the watchdog interval until stop
// is called (which waits for the goroutine). The pings come from a
// goroutine of their own: they tell systemd that the process runs and is
// scheduled (a hung or deadlocked process gets restarted), not that every
// listener answers, which /healthz and /readyz are for.
func (n *notifier) startWatchdog(log *slog.Logger) (stop func()) {
	if n == nil || n.watchdog == 0 {
		return func() {}
	}
	log.Info("systemd watchdog", "interval", n.watchdog)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(n.watchdog / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n.send("WATCHDOG=1")
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// Close closes the socket.
func (n *notifier) Close() {
	if n != nil {
		n.conn.Close()
	}
}
