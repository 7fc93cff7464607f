package peerlink

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion's log lines to the Link's logger at debug level: pion reports as
// errors what is routine here (a data channel opened as its peer connection closes), and a
// failed peer connection is counted in Stats, not logged per event.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

// pionLogger drops trace lines and logs the rest at debug level, with pion's level.
type pionLogger struct{ log *slog.Logger }

func (l pionLogger) emit(level, msg string) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(msg, "pionLevel", level)
	}
}

func (l pionLogger) Trace(string)                   {}
func (l pionLogger) Tracef(string, ...any)          {}
func (l pionLogger) Debug(msg string)               { l.emit("debug", msg) }
func (l pionLogger) Debugf(format string, a ...any) { l.emitf("debug", format, a) }
func (l pionLogger) Info(msg string)                { l.emit("info", msg) }
func (l pionLogger) Infof(format string, a ...any)  { l.emitf("info", format, a) }
func (l pionLogger) Warn(msg string)                { l.emit("warn", msg) }
func (l pionLogger) Warnf(format string, a ...any)  { l.emitf("warn", format, a) }
func (l pionLogger) Error(msg string)               { l.emit("error", msg) }
func (l pionLogger) Errorf(format string, a ...any) { l.emitf("error", format, a) }

func (l pionLogger) emitf(level, format string, a []any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, a...), "pionLevel", level)
	}
}
