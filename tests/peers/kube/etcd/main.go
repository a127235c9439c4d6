// The test peer etcd: etcd's own server entry point, unmodified, built from the published
// go.etcd.io/etcd/server/v3 module (the version k8s.io/kubernetes v1.36.1 requires).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
