// The test peer kube-apiserver: Kubernetes' own API server command, unmodified, built from the
// published k8s.io/kubernetes module. scripts/kube-apiserver.sh builds it into
// ~/.cache/meshtls-peers/kube/ and starts it on 127.0.0.1 for the controller tests.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
