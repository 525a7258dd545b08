// Package web holds EdgeSeek's browser playground: plain HTML, CSS and ES
// modules, no build step. FS embeds them; the playground package serves FS
// at "/" together with the edge module and the model description.
package web

import "embed"

// FS is the page: index.html, style.css and js/*.js.
//
//go:embed index.html style.css js
var FS embed.FS
