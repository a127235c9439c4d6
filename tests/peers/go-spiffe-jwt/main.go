// go-spiffe-jwt: a JWT-SVID peer for meshtls's interop tests, on go-spiffe's jwtbundle and
// jwtsvid packages and go-jose (the JWS library go-spiffe itself uses).
//
//	go-spiffe-jwt validate <trust-domain> <jwks-file> <audience> <token>
//	    go-spiffe's jwtsvid.ParseAndValidate with the trust domain's bundle (jwtbundle.Parse);
//	    prints {"spiffe_id":..., "audience":[...]} and exits 0, or prints the error, exit 1.
//	go-spiffe-jwt mint <ES256|ES384|RS256> <spiffe-id> <audience>
//	    a fresh key; prints {"token":..., "jwks":...} (the JWKS in the Workload API's shape).
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
)

func fail(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: go-spiffe-jwt validate|mint ...")
	}
	switch os.Args[1] {
	case "validate":
		validate(os.Args[2:])
	case "mint":
		mint(os.Args[2:])
	default:
		fail("unknown command %q", os.Args[1])
	}
}

func validate(args []string) {
	if len(args) != 4 {
		fail("usage: validate <trust-domain> <jwks-file> <audience> <token>")
	}
	td, err := spiffeid.TrustDomainFromString(args[0])
	if err != nil {
		fail("trust domain: %v", err)
	}
	data, err := os.ReadFile(args[1])
	if err != nil {
		fail("read: %v", err)
	}
	bundle, err := jwtbundle.Parse(td, data)
	if err != nil {
		fail("bundle: %v", err)
	}
	svid, err := jwtsvid.ParseAndValidate(args[3], bundle, []string{args[2]})
	if err != nil {
		fail("%v", err)
	}
	out, _ := json.Marshal(map[string]any{"spiffe_id": svid.ID.String(), "audience": svid.Audience})
	fmt.Println(string(out))
}

func mint(args []string) {
	if len(args) != 3 {
		fail("usage: mint <alg> <spiffe-id> <audience>")
	}
	var key crypto.Signer
	var err error
	alg := jose.SignatureAlgorithm(args[0])
	switch alg {
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.RS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		fail("unsupported alg %q", args[0])
	}
	if err != nil {
		fail("keygen: %v", err)
	}
	kid := "go-jose-key"
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		fail("signer: %v", err)
	}
	now := time.Now()
	token, err := jwt.Signed(signer).Claims(jwt.Claims{
		Subject:  args[1],
		Audience: jwt.Audience{args[2]},
		Expiry:   jwt.NewNumericDate(now.Add(5 * time.Minute)),
		IssuedAt: jwt.NewNumericDate(now),
	}).Serialize()
	if err != nil {
		fail("sign: %v", err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: string(alg)}}}
	jwks, err := json.Marshal(set)
	if err != nil {
		fail("jwks: %v", err)
	}
	out, _ := json.Marshal(map[string]string{"token": token, "jwks": string(jwks)})
	fmt.Println(string(out))
}
