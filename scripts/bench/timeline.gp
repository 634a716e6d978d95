# Timeline of an upgrade run: successful and failed requests per 100 ms, every upgrade
# signal marked, this supervisor beside naive restart, one row per connection mode. A grey
# triangle marks an interval in which the load client itself was not scheduled for more than
# 20 ms (a busy machine): a dip there is not the server's doing.
#   gnuplot -e "dir='.bench'; startup=500; out='docs/bench-timeline-startup500.png'" scripts/bench/timeline.gp
# Reads DIR/timeline-{sv-notify,naive}-{keepalive,close}-startupN.{csv,signals}, written by bench.py.
if (!exists("dir")) dir = ".bench"
if (!exists("startup")) startup = 0
if (!exists("out")) out = sprintf("%s/bench-timeline-startup%d.png", dir, startup)

set terminal pngcairo size 1600,900 font "DejaVu Sans,10" noenhanced
set output out
set datafile separator ","
set datafile commentschars "#"
set datafile missing "NaN"

contenders = "sv-notify naive"
titles = "supervisor--ready-notify naive-restart"
modes = "keepalive close"
file(c, m, ext) = sprintf("%s/timeline-%s-%s-startup%d.%s", dir, c, m, startup, ext)
pos(x) = x > 0 ? x : NaN

set multiplot layout 2,2 title sprintf("Requests per 100 ms while upgrading every second (demo worker, startup delay %d ms, 32 connections)", startup) font ",13"
set xlabel "seconds"
set ylabel "requests per 100 ms (log)"
set grid ytics lc rgb "#dddddd"
set key top left horizontal noopaque nobox samplen 2 width -1 maxcols 4
set style fill solid 0.75 noborder
do for [mi = 1:2] {
  do for [ci = 1:2] {
    c = word(contenders, ci)
    m = word(modes, mi)
    unset logscale y
    set yrange [*:*]
    set xrange [*:*]
    stats file(c, m, "csv") using 2 nooutput name "OK"
    stats file(c, m, "csv") using 8 nooutput name "FAIL"
    set logscale y
    ymax = (OK_max > FAIL_max ? OK_max : FAIL_max) * 30  # room for the key above the bars
    set yrange [0.8:ymax]
    set xrange [0:OK_records * 0.1]
    set title sprintf("%s — %s connections: %d ok, %d failed", (ci == 1 ? "this supervisor (--ready notify)" : "naive restart (kill, then start)"), m, OK_sum, FAIL_sum)
    plot file(c, m, "csv") using ($1 + 0.05):(pos($2)):(0.09) with boxes lc rgb "#2a9d3a" title "ok", \
         file(c, m, "csv") using ($1 + 0.05):(pos($8)):(0.05) with boxes lc rgb "#d62828" title "failed", \
         file(c, m, "signals") using 1:(0.8):(0):(ymax) with vectors nohead dt 2 lw 2 lc rgb "#1030a0" title "upgrade signal", \
         file(c, m, "csv") using ($1 + 0.05):($9 > 20 ? ymax / 2 : NaN) with points pt 9 ps 1.5 lc rgb "#707070" title "load client stalled > 20 ms"
  }
}
unset multiplot
