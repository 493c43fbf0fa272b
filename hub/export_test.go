package hub

// RouteInfo describes one route of the hub for the security tests.
type RouteInfo struct {
	Method, Path string
	Public, Page bool
}

// AllRoutes lists the API routes and the pages, as Handler serves them.
func AllRoutes() []RouteInfo {
	var out []RouteInfo
	for _, r := range routes() {
		out = append(out, RouteInfo{Method: r.method, Path: r.path, Public: r.public})
	}
	for _, r := range pages() {
		out = append(out, RouteInfo{Method: r.method, Path: r.path, Public: r.public, Page: true})
	}
	return out
}

// WaitVersionSyncs waits for the version listings the server began in the
// background.
func (s *Server) WaitVersionSyncs() { s.versionIdx.wg.Wait() }
