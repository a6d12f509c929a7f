// The harness shared by the Kubernetes 1.37 oracles (../main.go, ../reflector) and the 1.34
// oracle (../../kube-1.34, whose main.go is a symlink to ../kube-1.37/main.go): its own module,
// so that each oracle module builds it against its own k8s.io/apiserver version through a
// `replace watchsim.oracle/kube137/harness => <this directory>` directive.
//
// It must require nothing: a requirement here would take part in every user's version
// selection (a k8s.io/apiserver v0.37 here would lift the 1.34 oracle to v0.37). The users'
// go.mod files require what it imports. Do not run `go mod tidy` in this directory.
module watchsim.oracle/kube137/harness

go 1.26.0
