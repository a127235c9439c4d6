// hbone-peer: Istio's own HBONE implementation (istio.io/istio/pkg/hbone, from the published Go
// module) wrapped in a small command line so meshtls's tests can run it in both directions.
//
//	hbone-peer server  --cert C --key K --ca R
//	    serves pkg/hbone's server (it dials the CONNECT authority and pipes bytes) over TLS 1.3
//	    on 127.0.0.1, client certificate required, chained to R, Istio form, same trust domain
//	    as C; prints "listening ADDR" on stdout.
//	hbone-peer dial --via ADDR --target IP:PORT --cert C --key K --ca R --server-id ID [--read N]
//	    pkg/hbone's dialer: sends stdin through the tunnel, then prints N bytes read back.
//	hbone-peer status --via ADDR --target IP:PORT ... [--tls12]
//	    one CONNECT with golang.org/x/net/http2 directly, prints "status CODE" (pkg/hbone's
//	    dialer does not surface the status), or "error: ..." and exits 1.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/net/http2"

	"istio.io/istio/pkg/hbone"
	"istio.io/istio/pkg/log"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hbone-peer server|dial|status [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	cert := fs.String("cert", "", "own certificate chain (PEM, leaf first)")
	key := fs.String("key", "", "own private key (PEM)")
	ca := fs.String("ca", "", "trust bundle (PEM)")
	via := fs.String("via", "", "HBONE proxy address (ip:port)")
	target := fs.String("target", "", "CONNECT authority (ip:port)")
	serverID := fs.String("server-id", "", "expected SPIFFE ID of the HBONE server")
	readN := fs.Int("read", 0, "bytes to read back from the tunnel")
	tls12 := fs.Bool("tls12", false, "offer TLS 1.2 only")
	if err := fs.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	// Istio's log goes to stderr: stdout carries the tunnel's bytes and the results.
	opts := log.DefaultOptions()
	opts.OutputPaths = []string{"stderr"}
	opts.ErrorOutputPaths = []string{"stderr"}
	check(log.Configure(opts))
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	check(err)
	pem, err := os.ReadFile(*ca)
	check(err)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		check(errors.New("no certificate in the bundle"))
	}
	switch os.Args[1] {
	case "server":
		server(pair, roots)
	case "dial":
		dial(clientTLS(pair, roots, *serverID, *tls12), *via, *target, *readN)
	case "status":
		status(clientTLS(pair, roots, *serverID, *tls12), *via, *target)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

func check(err error) {
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}

// verifyChain checks raw against roots and returns the leaf's URI SANs.
func verifyChain(raw [][]byte, roots *x509.CertPool) ([]string, error) {
	if len(raw) == 0 {
		return nil, errors.New("no certificate")
	}
	certs := make([]*x509.Certificate, 0, len(raw))
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, err
	}
	var uris []string
	for _, u := range certs[0].URIs {
		uris = append(uris, u.String())
	}
	return uris, nil
}

// istioTrustDomain returns td for spiffe://td/ns/x/sa/y, else "".
func istioTrustDomain(id string) string {
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || parts[1] != "ns" || parts[3] != "sa" {
		return ""
	}
	return parts[0]
}

func clientTLS(pair tls.Certificate, roots *x509.CertPool, serverID string, tls12 bool) *tls.Config {
	cfg := &tls.Config{
		Certificates:           []tls.Certificate{pair},
		MinVersion:             tls.VersionTLS13,
		SessionTicketsDisabled: true,
		// The server is checked by its SPIFFE ID below, never by a DNS name.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			uris, err := verifyChain(raw, roots)
			if err != nil {
				return err
			}
			if len(uris) != 1 || uris[0] != serverID {
				return fmt.Errorf("server identity %v, want %s", uris, serverID)
			}
			return nil
		},
		NextProtos: []string{"h2"},
	}
	if tls12 {
		cfg.MinVersion = tls.VersionTLS12
		cfg.MaxVersion = tls.VersionTLS12
	}
	return cfg
}

func server(pair tls.Certificate, roots *x509.CertPool) {
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	check(err)
	if len(leaf.URIs) != 1 {
		check(errors.New("own certificate has no single URI SAN"))
	}
	ownTD := istioTrustDomain(leaf.URIs[0].String())
	cfg := &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			uris, err := verifyChain(raw, roots)
			if err != nil {
				return err
			}
			for _, u := range uris {
				if td := istioTrustDomain(u); td != "" && td == ownTD {
					return nil
				}
			}
			return fmt.Errorf("client identity %v not in trust domain %s", uris, ownTD)
		},
		NextProtos:             []string{"h2"},
		SessionTicketsDisabled: true,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	fmt.Println("listening", ln.Addr().String())
	hs := hbone.NewServer()
	hs.TLSConfig = cfg
	// NewServer enables HTTP/1 and unencrypted HTTP/2 (h2c); over TLS it needs HTTP/2 too
	// (ztunnel's port 15008 speaks h2 over TLS only).
	hs.Protocols.SetHTTP2(true)
	check(hs.ServeTLS(ln, "", ""))
}

func dial(cfg *tls.Config, via, target string, readN int) {
	d := hbone.NewDialer(hbone.Config{ProxyAddress: via, TLS: cfg})
	conn, err := d.Dial("tcp", target)
	check(err)
	defer conn.Close()
	in, err := io.ReadAll(os.Stdin)
	check(err)
	check(conn.SetDeadline(time.Now().Add(20 * time.Second)))
	if _, err := conn.Write(in); err != nil {
		check(err)
	}
	buf := make([]byte, readN)
	n, err := io.ReadFull(conn, buf)
	os.Stdout.Write(buf[:n])
	check(err)
}

func status(cfg *tls.Config, via, target string) {
	t := &http2.Transport{TLSClientConfig: cfg}
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest(http.MethodConnect, "https://"+via, pr)
	check(err)
	req.Host = target
	resp, err := t.RoundTrip(req)
	check(err)
	fmt.Println("status", resp.StatusCode)
	resp.Body.Close()
}
