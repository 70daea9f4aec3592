package gui

// notify.go: desktop notifications for jobs that finished (Info.Notify;
// spec/gui.md, "Tray": the recent jobs the menu lists, told as they end).

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/lang"

	"github.com/cardwright/cardwright/agent"
)

// maxNotifications is how many jobs finishing between two snapshots are
// told one by one; more are told in one summary, so a batch run does not
// bury the desktop.
const maxNotifications = 3

// Finished returns the notifications for the jobs in next.Recent that are
// not in prev.Recent (a job is known by its origin, ID and Finished time),
// oldest first: "Card job finished" with origin, reader and ICCSN, or "Card
// job failed" with the error code. The caller starts from its first
// snapshot as prev, so jobs that ended before the GUI started are not
// announced.
func Finished(prev, next State) []*fyne.Notification {
	type key struct {
		origin, id string
		finished   int64
	}
	seen := make(map[key]bool, len(prev.Recent))
	for _, j := range prev.Recent {
		seen[key{j.Origin, j.ID, j.Finished.UnixNano()}] = true
	}
	var done []agent.RecentJob
	for i := len(next.Recent) - 1; i >= 0; i-- { // Recent is newest first
		j := next.Recent[i]
		if !seen[key{j.Origin, j.ID, j.Finished.UnixNano()}] {
			done = append(done, j)
		}
	}
	if len(done) > maxNotifications {
		return []*fyne.Notification{summary(done)}
	}
	out := make([]*fyne.Notification, len(done))
	for i, j := range done {
		out[i] = jobNotification(j)
	}
	return out
}

func jobNotification(j agent.RecentJob) *fyne.Notification {
	parts := []string{originText(j.Origin)}
	if j.Reader != "" {
		parts = append(parts, j.Reader)
	}
	if !j.OK {
		return fyne.NewNotification(lang.X("notify.failed", "Card job failed"),
			strings.Join(append(parts, resultText(j)), " · "))
	}
	if j.ICCSN != "" {
		parts = append(parts, lang.X("notify.iccsn", "card {{.ICCSN}}", map[string]any{"ICCSN": j.ICCSN}))
	}
	return fyne.NewNotification(lang.X("notify.finished", "Card job finished"), strings.Join(parts, " · "))
}

func summary(jobs []agent.RecentJob) *fyne.Notification {
	failed := 0
	for _, j := range jobs {
		if !j.OK {
			failed++
		}
	}
	title := lang.XN("notify.many", "{{.Count}} card jobs finished", len(jobs), map[string]any{"Count": len(jobs)})
	content := lang.X("notify.manyOK", "All succeeded.")
	if failed > 0 {
		content = lang.XN("notify.manyFailed", "{{.Count}} failed; see Recent jobs.", failed, map[string]any{"Count": failed})
	}
	return fyne.NewNotification(title, content)
}
