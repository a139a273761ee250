// Every <time datetime="...UTC..."> shows the reader's local time; the UTC
// instant the server wrote stays in the title (shown on hover) and in the
// datetime attribute. Without this script the server's UTC text shows.
const format = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
});
for (const time of document.querySelectorAll("time[datetime]")) {
  const at = new Date(time.dateTime);
  if (Number.isNaN(at.getTime())) continue;
  time.title = `${time.dateTime.replace("T", " ").replace("+00:00", "")} UTC`;
  time.textContent = format.format(at);
}
