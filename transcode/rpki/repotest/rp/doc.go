// Package rp runs real RPKI relying parties (rpki-client, FORT) offline
// against a local RRDP origin, for tests.
//
// The relying parties are Debian's rpki-client 8.2 and fort-validator 1.5.4
// (apt-get install rpki-client fort-validator faketime nginx). They fetch a
// repository over RRDP (RFC 8182) from an [Origin] on the loopback
// interface, validate it (RFC 6487, RFC 6488, RFC 9286, RFC 9582) and
// write Validated ROA Payloads, which a [Result] holds as sorted [rpki.VRP]s
// together with the logs and the lines of the logs that report problems.
//
// A test typically does:
//
//	rp.Require(t, "root", "unshare", "mount", "faketime", "rpki-client")
//	pki, _ := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
//	o, _ := rp.NewOrigin(rp.OriginConfig{Dir: repoDir, PKI: pki, Port: 3000})
//	defer o.Close()
//	res, err := rp.RunRPKIClient(ctx, rp.Options{TAL: tal, CAFile: pki.CAFile, CacheDir: cache})
//	// err: could not run; res.Err(): ran but failed or logged problems.
//	if d := rp.DiffVRPs(res.VRPs, want, 10); d != "" { t.Error(d) }
//
// # What running them offline takes
//
// Both relying parties insist on https for RRDP and for the TA certificate,
// so the origin is HTTPS with a private CA from [NewPKI], valid from 2020 to
// 2040 so that both a faked clock and the real one accept it.
//
// rpki-client trusts only /usr/lib/ssl/cert.pem (libtls' default, on
// Debian a link to /etc/ssl/certs/ca-certificates.crt) and has no option
// for another file. [RunRPKIClient] runs
//
//	unshare -m --propagation private sh -c \
//	  'mount --bind "$1" /usr/lib/ssl/cert.pem && mount --bind "$2" "$3" && shift 3 && exec "$@"' \
//	  sh CA.pem CACHEDIR WORK/cache \
//	  env LD_PRELOAD=.../libfaketime.so.1 'FAKETIME=@2023-02-14 00:00:00' \
//	  rpki-client -v -j -c -s 60 -e /bin/false -t WORK/ta.tal -d WORK/cache WORK/out
//
// The bind mount over the link lands on its target, in the private mount
// namespace only. This needs root. Started as root, rpki-client drops its
// privileges to _rpki-client, which must own the cache and the output
// directory and be able to walk to them: t.TempDir() directories are 0700,
// so the harness works in a 0755 directory under os.TempDir and
// bind-mounts the caller's cache into it (and chowns the cache). -e
// /bin/false makes the rsync fallback fail at once. rpki-client exits 0 even
// when nothing validated; look at Result.Err and the VRPs.
//
// FORT takes the CA through --http.ca-path, a directory hashed with
// "openssl rehash" (libcurl's CApath); it needs no root. [RunFORT] runs
//
//	env LD_PRELOAD=... FAKETIME=... fort --tal=WORK/tal --local-repository=CACHEDIR \
//	  --rsync.enabled=false --http.ca-path=WORK/capath --output.roa=WORK/vrps.csv \
//	  --output.format=csv --log.output=console --log.level=info \
//	  --validation-log.enabled=true --validation-log.output=console \
//	  --validation-log.level=info --mode=standalone
//
// --tal takes a directory (every *.tal in it) or a file; the Krill TAL with
// an https and an rsync URI works as is.
//
// # Faked time
//
// With Options.Time set, the relying party starts its clock there and the
// clock runs on (libfaketime's "@" form). The harness sets LD_PRELOAD and
// FAKETIME itself, through env(1), innermost, right before the relying
// party, instead of calling the faketime(1) wrapper: the wrapper forks the
// program and waits for it, so the relying party would be a grandchild that
// neither signals to the wrapper nor Pdeathsig reach, and a server-mode FORT
// outlived a killed test. TZ=UTC is set so that the time is read as UTC.
// Both relying parties are dynamically linked; forked children (rpki-client
// runs several) inherit the preload.
//
// # Incremental runs and deltas
//
// Pass the same Options.CacheDir to a second [RunRPKIClient]: rpki-client
// keeps the RRDP session, serial and Last-Modified in CACHE/.rrdp/*/.state,
// sends If-Modified-Since and fetches only the new deltas ("downloading 1
// deltas"; the origin sees the notification and the delta, not the
// snapshot).
//
// FORT 1.5.4 keeps its RRDP state in memory only: a second standalone run
// downloads the snapshot again. [StartFORT] therefore runs FORT in server
// mode (RTR on a free port of 127.0.0.1) whose cycles keep the state; its
// shortest interval is 60 s, so its clock runs 60 times faster than real
// time and a cycle starts about every second. [FORT.Next] returns the
// result of the next cycle; FORT idles about a second after each cycle,
// which is when a test changes the origin.
//
// # Problems in the logs
//
// Result.Problems classifies conservatively: a line is a problem unless it
// is known to appear in clean runs.
//
//   - rpki-client prints "rpki-client: MESSAGE" on stderr without a level.
//     Benign are the -v progress messages "pulling from", "loaded from
//     network", "downloading snapshot", "downloading N deltas",
//     "notification file not modified", "repository not modified" and "all
//     files parsed: generating output"; anything else ("CRL has expired",
//     "TLS handshake: ...", "connect: Connection refused", "delta sync
//     failed, fallback to snapshot", "fallback to cache") is a problem, and
//     so is a stdout summary line with a non-zero "failed parse", "invalid"
//     or "stale" count.
//   - FORT prints "Mon DD hh:mm:ss LVL[ [Validation]]: MESSAGE". DBG and
//     INF lines are benign; ERR and CRT lines are problems; WRN lines are
//     problems except "The validation has begun.", "The validation has
//     successfully ended." and the two "First validation cycle ..." lines
//     of server mode, which FORT prints at level warning in every run.
//     Lines without that format are problems. A failed validation makes
//     FORT exit with status 22 and no output file.
//
// # The origin
//
// [Origin] serves a directory with net/http (strong ETag from the content,
// Last-Modified, 304 on If-Modified-Since and If-None-Match) or, with
// OriginConfig.Nginx, with nginx started from a configuration in a
// temporary prefix: "daemon off; master_process off;" makes it a single
// process that Pdeathsig reaches (a killed master leaves its workers
// listening on the port) and that keeps the user that started it, so it
// reads 0700 test directories; -e moves the early error log, which
// otherwise goes to /var/log/nginx. Both record every request: the
// Go server in memory, nginx in an access log in the format "$request_method
// $status $uri". The RPs resolve "localhost" with the system resolver
// (rpki-client) or internally (curl in FORT) and may try ::1 first, so the
// origin listens on [::1] too when the host has it. Repositories such as
// the Krill data set name a fixed port (https://localhost:3000/); set
// OriginConfig.PortWait to wait for tests of other packages that hold it.
package rp
