# make bench       full side-by-side benchmark (≤ ~14 min), rewrites docs/BENCHMARKS.md
# make bench-quick the same in under a minute; proves the harness works, figures mean nothing
# make test        the project's tests (as .ci/run does) and the harness's own tests
.PHONY: bench bench-quick test

bench:
	cd bench && go run .

bench-quick:
	cd bench && go run . -quick -out $(or $(OUT),/tmp/auditseg-bench-quick/BENCHMARKS.md)

test:
	go test -race ./...
	cd bench && go vet . && go test .
