// go-spiffe-workload: a Workload API client peer for meshtls's interop tests, on go-spiffe's
// workloadapi package (the client every Go SPIFFE workload uses). The endpoint comes from
// SPIFFE_ENDPOINT_SOCKET, as go-spiffe reads it.
//
//	go-spiffe-workload x509
//	    workloadapi.FetchX509Context; each SVID verified against its trust domain's bundle with
//	    x509svid.Verify; prints {"svids":[{"spiffe_id","hint","serial"}],"bundles":[td...]}.
//	go-spiffe-workload watch <n>
//	    workloadapi.WatchX509Context; prints one line {"spiffe_id","serial"} (the default SVID)
//	    per update, "ready" on stderr after the first, and exits after n updates.
//	go-spiffe-workload jwt <audience>
//	    workloadapi.FetchJWTSVID, then jwtsvid.ParseAndValidate with the bundles from
//	    FetchJWTBundles, then the server's ValidateJWTSVID; prints {"spiffe_id","token"}.
//
// Errors print their text on stdout and exit 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

func fail(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
	os.Exit(1)
}

func emit(v any) {
	out, err := json.Marshal(v)
	if err != nil {
		fail("json: %v", err)
	}
	fmt.Println(string(out))
}

type svidOut struct {
	SpiffeID string `json:"spiffe_id"`
	Hint     string `json:"hint,omitempty"`
	Serial   string `json:"serial"`
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: go-spiffe-workload x509|watch N|jwt AUDIENCE")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	switch os.Args[1] {
	case "x509":
		x509c, err := workloadapi.FetchX509Context(ctx)
		if err != nil {
			fail("fetch x509 context: %v", err)
		}
		var svids []svidOut
		for _, s := range x509c.SVIDs {
			if _, _, err := x509svid.Verify(s.Certificates, x509c.Bundles); err != nil {
				fail("verify %s: %v", s.ID, err)
			}
			svids = append(svids, svidOut{s.ID.String(), s.Hint, s.Certificates[0].SerialNumber.String()})
		}
		var tds []string
		for _, b := range x509c.Bundles.Bundles() {
			tds = append(tds, b.TrustDomain().Name())
		}
		emit(map[string]any{"svids": svids, "bundles": tds})
	case "watch":
		if len(os.Args) != 3 {
			fail("usage: go-spiffe-workload watch N")
		}
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n < 1 {
			fail("bad count %q", os.Args[2])
		}
		w := &watcher{want: n, cancel: cancel}
		err = workloadapi.WatchX509Context(ctx, w)
		if w.seen < n {
			fail("watch ended after %d updates: %v", w.seen, err)
		}
	case "jwt":
		if len(os.Args) != 3 {
			fail("usage: go-spiffe-workload jwt AUDIENCE")
		}
		client, err := workloadapi.New(ctx)
		if err != nil {
			fail("client: %v", err)
		}
		defer client.Close()
		svid, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: os.Args[2]})
		if err != nil {
			fail("fetch jwt-svid: %v", err)
		}
		bundles, err := client.FetchJWTBundles(ctx)
		if err != nil {
			fail("fetch jwt bundles: %v", err)
		}
		token := svid.Marshal()
		parsed, err := jwtsvid.ParseAndValidate(token, bundles, []string{os.Args[2]})
		if err != nil {
			fail("validate locally: %v", err)
		}
		if _, err := client.ValidateJWTSVID(ctx, token, os.Args[2]); err != nil {
			fail("validate by the server: %v", err)
		}
		emit(map[string]any{"spiffe_id": parsed.ID.String(), "token": token})
	default:
		fail("unknown command %q", os.Args[1])
	}
}

type watcher struct {
	want   int
	seen   int
	cancel context.CancelFunc
}

func (w *watcher) OnX509ContextUpdate(c *workloadapi.X509Context) {
	s := c.DefaultSVID()
	if s == nil {
		return
	}
	w.seen++
	emit(svidOut{SpiffeID: s.ID.String(), Serial: s.Certificates[0].SerialNumber.String()})
	if w.seen == 1 {
		fmt.Fprintln(os.Stderr, "ready")
	}
	if w.seen >= w.want {
		w.cancel()
	}
}

func (w *watcher) OnX509ContextWatchError(err error) {
	fmt.Fprintf(os.Stderr, "watch error: %v\n", err)
}
