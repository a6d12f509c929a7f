// Command etcd is the etcd server that k8s.io/apiserver v0.37's go.mod pins (go.etcd.io/etcd
// v3.7), as a stand-alone binary with etcd's own flags (etcdmain.Main), so that
// tests/etcd_conformance.rs runs its differential sequences against a current etcd as well as
// Debian's 3.4.23 (WATCHSIM_ETCD=target/oracle/etcd-3.7/etcd).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
