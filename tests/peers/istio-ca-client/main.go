// istio-ca-client: Istio's own CA client (the istio-agent's `citadel` provider, from the
// published istio.io/istio Go module) asking a CA server of Istio's protocol for a certificate.
// A meshtls test peer: the CLI tests run it against `meshtls ca serve`.
//
//	istio-ca-client -addr 127.0.0.1:15012 -root root-cert.pem -token istio-token \
//	    [-san istiod.istio-system.svc] [-cluster-id Kubernetes] [-ttl 3600] \
//	    [-identity spiffe://cluster.local/ns/shop/sa/web] [-impersonate spiffe://...]
//
// Without -impersonate the request goes through citadel.CitadelClient.CSRSign, exactly as the
// agent sends it (bearer token from the token file, ClusterID metadata, CertSigner metadata).
// With -impersonate, as ztunnel asks for a pod on its node: the same Istio pieces (the gRPC and
// TLS options of pilot/pkg/grpc, the agent's token provider, the istio.io/api client) with an
// ImpersonatedIdentity metadata entry, which CSRSign has no parameter for.
//
// On success it prints the chain (PEM, leaf first) on stdout and exits 0; on a refusal it
// prints "error: <the client's error>" (with the gRPC code and message) on stderr and exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	pb "istio.io/api/security/v1alpha1"
	istiogrpc "istio.io/istio/pilot/pkg/grpc"
	"istio.io/istio/pkg/security"
	"istio.io/istio/security/pkg/credentialfetcher"
	"istio.io/istio/security/pkg/nodeagent/caclient"
	"istio.io/istio/security/pkg/nodeagent/caclient/providers/citadel"
	"istio.io/istio/security/pkg/pki/util"
)

func main() {
	addr := flag.String("addr", "", "the CA's host:port")
	root := flag.String("root", "", "the mesh root certificate (PEM file)")
	token := flag.String("token", "", "the service-account token file")
	san := flag.String("san", "", "the name checked on the CA's certificate (ISTIOD_SAN)")
	clusterID := flag.String("cluster-id", "Kubernetes", "the agent's cluster id")
	identity := flag.String("identity", "spiffe://cluster.local/ns/default/sa/default", "the identity put in the CSR")
	impersonate := flag.String("impersonate", "", "ask for this identity with ImpersonatedIdentity")
	ttl := flag.Int64("ttl", 3600, "the requested lifetime in seconds")
	flag.Parse()
	if err := run(*addr, *root, *token, *san, *clusterID, *identity, *impersonate, *ttl); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func run(addr, root, token, san, clusterID, identity, impersonate string, ttl int64) error {
	fetcher, err := credentialfetcher.NewCredFetcher(security.JWT, "", token, "")
	if err != nil {
		return fmt.Errorf("token fetcher: %v", err)
	}
	opts := &security.Options{
		CAEndpoint:    addr,
		CAEndpointSAN: san,
		ClusterID:     clusterID,
		CredFetcher:   fetcher,
	}
	csrIdentity := identity
	if impersonate != "" {
		csrIdentity = impersonate
	}
	csr, _, err := util.GenCSR(util.CertOptions{Host: csrIdentity, ECSigAlg: util.EcdsaSigAlg})
	if err != nil {
		return fmt.Errorf("csr: %v", err)
	}
	var chain []string
	if impersonate == "" {
		client, err := citadel.NewCitadelClient(opts, &citadel.TLSOptions{RootCert: root})
		if err != nil {
			return err
		}
		defer client.Close()
		chain, err = client.CSRSign(csr, ttl)
		if err != nil {
			return err
		}
	} else {
		chain, err = impersonated(opts, root, csr, ttl, impersonate)
		if err != nil {
			return err
		}
	}
	fmt.Print(strings.Join(chain, ""))
	return nil
}

func impersonated(opts *security.Options, root string, csr []byte, ttl int64, who string) ([]string, error) {
	dial, err := istiogrpc.ClientOptions(nil, &istiogrpc.TLSOptions{
		RootCert:      root,
		ServerAddress: opts.CAEndpoint,
		SAN:           opts.CAEndpointSAN,
	})
	if err != nil {
		return nil, err
	}
	dial = append(dial, grpc.WithPerRPCCredentials(caclient.NewDefaultTokenProvider(opts)))
	conn, err := grpc.NewClient(opts.CAEndpoint, dial...)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	req := &pb.IstioCertificateRequest{
		Csr:              string(csr),
		ValidityDuration: ttl,
		Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			security.ImpersonatedIdentity: structpb.NewStringValue(who),
		}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = metadata.NewOutgoingContext(ctx, metadata.Pairs("ClusterID", opts.ClusterID))
	resp, err := pb.NewIstioCertificateServiceClient(conn).CreateCertificate(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %v", err)
	}
	if len(resp.CertChain) <= 1 {
		return nil, fmt.Errorf("invalid empty CertChain")
	}
	return resp.CertChain, nil
}
