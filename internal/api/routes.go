package api

import "net/http"

const (
	get       = http.MethodGet
	head      = http.MethodHead
	post      = http.MethodPost
	del       = http.MethodDelete
	anyMethod = "*"
)

// routes builds the route table. Exact paths come before patterns with a
// parameter in the same position (/images/json before /images/{name...}/json).
func (s *Server) routes() {
	rt := &s.router

	rt.handle(head, "/_ping", s.ping)
	rt.handle(get, "/_ping", s.ping)

	// system
	rt.handle(get, "/info", s.info)
	rt.handle(get, "/version", s.version)
	rt.handle(get, "/events", s.events)
	rt.handle(get, "/system/df", s.diskUsage)

	// containers
	rt.handle(get, "/containers/json", s.containerList)
	rt.handle(post, "/containers/create", s.containerCreate)
	rt.handle(post, "/containers/prune", s.containerPrune)
	// {name...}: a legacy link name has a slash (/containers/app/db/json)
	rt.handle(get, "/containers/{name...}/json", s.containerInspect)
	rt.handle(get, "/containers/{name}/top", s.containerTop)
	rt.handle(get, "/containers/{name}/logs", s.containerLogs)
	rt.handle(get, "/containers/{name}/changes", s.containerChanges)
	rt.handle(get, "/containers/{name}/export", s.containerExport)
	rt.handle(get, "/containers/{name}/stats", s.containerStats)
	rt.handle(post, "/containers/{name}/start", s.containerStart)
	rt.handle(post, "/containers/{name}/stop", s.containerStop)
	rt.handle(post, "/containers/{name}/restart", s.containerRestart)
	rt.handle(post, "/containers/{name}/kill", s.containerKill)
	rt.handle(post, "/containers/{name}/wait", s.containerWait)
	rt.handle(post, "/containers/{name}/attach", s.containerAttach)
	rt.handle(post, "/containers/{name}/resize", s.containerResize)
	rt.handle(post, "/containers/{name}/rename", s.containerRename)
	rt.handle(post, "/containers/{name}/pause", s.containerPause)
	rt.handle(post, "/containers/{name}/unpause", s.containerUnpause)
	rt.handle(post, "/containers/{name}/update", s.containerUpdate)
	rt.handle(post, "/containers/{name}/exec", s.execCreate)
	rt.handle(del, "/containers/{name}", s.containerRemove)
	rt.handle(head, "/containers/{name}/archive", s.containerArchive)
	rt.handle(get, "/containers/{name}/archive", s.containerArchive)
	rt.handle(http.MethodPut, "/containers/{name}/archive", s.containerArchive)
	rt.handle(anyMethod, "/containers/{name}/attach/ws", notImplemented("websocket attach"))
	rt.handle(anyMethod, "/containers/{name}/checkpoints", notImplemented("checkpoints"))
	rt.handle(anyMethod, "/containers/{name}/checkpoints/{cp}", notImplemented("checkpoints"))

	// exec
	rt.handle(post, "/exec/{id}/start", s.execStart)
	rt.handle(post, "/exec/{id}/resize", s.execResize)
	rt.handle(get, "/exec/{id}/json", s.execInspect)

	// images: names contain slashes and colons, hence {name...}
	rt.handle(get, "/images/json", s.imageList)
	rt.handle(get, "/images/get", s.imageSave)
	rt.handle(post, "/images/create", s.imageCreate)
	rt.handle(post, "/images/load", s.imageLoad)
	rt.handle(post, "/images/prune", s.imagePrune)
	rt.handle(get, "/images/search", notImplemented("image search"))
	rt.handle(get, "/images/{name...}/json", s.imageInspect)
	rt.handle(get, "/images/{name...}/history", s.imageHistory)
	rt.handle(get, "/images/{name...}/get", s.imageSave)
	rt.handle(post, "/images/{name...}/tag", s.imageTag)
	rt.handle(post, "/images/{name...}/push", s.imagePush)
	rt.handle(del, "/images/{name...}", s.imageDelete)
	rt.handle(post, "/commit", s.commit)

	// Not implemented yet, but answered the way the docker CLI's implicit
	// calls need: `docker inspect X` falls through containers, images,
	// networks, volumes and plugins, and must see 404 to print
	// "No such object".
	rt.handle(get, "/networks", s.networkList)
	rt.handle(get, "/networks/{id}", s.networkInspect)
	rt.handle(post, "/networks/create", s.networkCreate)
	rt.handle(post, "/networks/prune", s.networkPrune)
	rt.handle(del, "/networks/{id}", s.networkRemove)
	rt.handle(post, "/networks/{id}/connect", s.networkConnect)
	rt.handle(post, "/networks/{id}/disconnect", s.networkDisconnect)
	rt.handle(anyMethod, "/networks/{rest...}", notImplemented("networks"))
	rt.handle(anyMethod, "/networks", notImplemented("networks"))
	rt.handle(get, "/volumes", s.volumeList)
	rt.handle(post, "/volumes/create", s.volumeCreate)
	rt.handle(post, "/volumes/prune", s.volumePrune)
	rt.handle(get, "/volumes/{name}", s.volumeInspect)
	rt.handle(del, "/volumes/{name}", s.volumeRemove)
	rt.handle(anyMethod, "/volumes", notImplemented("volumes"))
	rt.handle(anyMethod, "/volumes/{rest...}", notImplemented("volumes"))
	rt.handle(get, "/plugins", s.pluginList)
	rt.handle(get, "/plugins/{name...}/json", s.pluginInspect)
	rt.handle(anyMethod, "/plugins/{rest...}", notImplemented("plugins"))
	rt.handle(anyMethod, "/plugins", notImplemented("plugins"))
	for _, p := range []string{"/swarm", "/nodes", "/services", "/tasks", "/secrets", "/configs"} {
		rt.handle(anyMethod, p, notSwarmManager)
		rt.handle(anyMethod, p+"/{rest...}", notSwarmManager)
	}
	rt.handle(post, "/build", s.build)
	rt.handle(post, "/build/prune", s.buildPrune)
	rt.handle(anyMethod, "/build", notImplemented("build"))
	rt.handle(anyMethod, "/build/{rest...}", notImplemented("build"))
	rt.handle(anyMethod, "/session", notImplemented("build sessions"))
	rt.handle(anyMethod, "/grpc", notImplemented("gRPC"))
	rt.handle(post, "/auth", s.auth)
	rt.handle(get, "/distribution/{name...}/json", s.distributionInspect)
}
