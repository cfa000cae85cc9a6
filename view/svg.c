/*
** svg.c — the flame graph: a self-contained SVG (no network, no external
** script or font) that opens in any browser from a file.
**
** Every frame is drawn by the server as <g><title/><rect/><text/></g>, so
** the picture and the hover titles work without script; the embedded
** script adds click to zoom, search (regular expression, with the matched
** share of the total) and reset, and shows the hovered frame below.
**
** Size: frames narrower than a minimum width are not drawn one by one: a
** run of narrow siblings becomes one grey frame (when the run is wide
** enough to see), and their children are not drawn.  The minimum width
** starts at MINW pixels and doubles until the frames' estimated markup
** (FRAMEBYTES plus the name twice each) fits MAXBYTES, so the file stays
** under 2 MB whatever the number of stacks or the length of the names.
**
** Colours: one warm colour per package (a hash of the name up to the
** first '.' after the last '/'), so a function keeps its colour across
** graphs.  A diff is drawn with the target's widths, each frame red when
** its total grew from base to target and blue when it shrank, the
** intensity proportional to the change over the largest change of any
** frame.  It is normalised: the base is scaled to the target's total
** first, so that a longer or busier target range does not make every
** frame red; colours show shares that changed (hover shows raw values).
*/
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NONE UINT32_MAX
#define WIDTH 1200.0
#define PAD 10.0
#define FRAMEH 16
#define TOP 66
#define BOTTOM 30
#define MINW 0.5
#define MAXBYTES 1800000 /* the frames' share of the file (< 2 MB in all) */
#define FRAMEBYTES 150   /* the markup of a frame besides its name */
#define CHARW 7.0
#define MAXDEPTH 1024 /* deeper frames are not drawn: bounds the recursion
                      ** (a hostile profile may hold a stack of a million
                      ** frames) and the picture's height */

typedef struct svg {
  const vtree *t;
  double minw, scale; /* pixels per unit of value */
  double maxdelta;
  double ratio; /* diff: target total / base total (the normalisation) */
  uint32_t maxdepth;
  const char *unit;
  int64_t total;
} svg;

/* The width a node is drawn with, in units of value. */
static int64_t wval(const svg *s, uint32_t n) {
  return s->t->tot[n][s->t->diff ? 1 : 0];
}

/* The estimated bytes of the frames drawn under n (not n itself) with
** s->minw; stops past limit. */
static size_t count(const svg *s, uint32_t n, size_t limit, uint32_t depth,
                    uint32_t *maxdepth) {
  const vtree *t = s->t;
  size_t k = 0;
  double run = 0;
  uint32_t c;

  if (depth >= MAXDEPTH)
    return 0;
  for (c = t->first[n]; c != NONE && k <= limit; c = t->next[c]) {
    double w = (double)wval(s, c) * s->scale;
    if (w <= 0)
      continue;
    if (w >= s->minw) {
      if (run >= s->minw)
        k += FRAMEBYTES + 24;
      run = 0;
      if (depth + 1 > *maxdepth)
        *maxdepth = depth + 1;
      k += FRAMEBYTES + 2 * strlen(pprof_stacks_name(t->st, t->name[c]));
      if (k <= limit)
        k += count(s, c, limit - k, depth + 1, maxdepth);
    } else {
      run += w;
    }
  }
  if (run >= s->minw)
    k += FRAMEBYTES + 24;
  return k;
}

/* The package part of a Go-style name: up to the first '.' after the last
** '/' (the whole name when there is none). */
static size_t package_len(const char *name) {
  const char *slash = strrchr(name, '/'), *dot;

  dot = strchr(slash ? slash : name, '.');
  return dot ? (size_t)(dot - name) : strlen(name);
}

static uint32_t fnv(const char *p, size_t n) {
  uint32_t h = 2166136261u;

  while (n--)
    h = (h ^ (unsigned char)*p++) * 16777619u;
  return h;
}

/* A diff's change of node n: its target minus its base scaled to the
** target's total. */
static double delta(const svg *s, uint32_t n) {
  return (double)s->t->tot[n][1] - (double)s->t->tot[n][0] * s->ratio;
}

static void colour(const svg *s, uint32_t n, const char *name, char out[48]) {
  const vtree *t = s->t;
  uint32_t h, fh;
  double d;
  int v;

  if (t->diff) {
    d = delta(s, n);
    v = s->maxdelta > 0 ? (int)(210.0 * (d < 0 ? -d : d) / s->maxdelta) : 0;
    v = v < 0 ? 0 : v > 210 ? 210 : v;
    if (v == 0)
      d = 0;
    if (d > 0)
      snprintf(out, 48, "rgb(255,%d,%d)", 245 - v, 245 - v);
    else if (d < 0)
      snprintf(out, 48, "rgb(%d,%d,255)", 245 - v, 245 - v);
    else
      snprintf(out, 48, "rgb(245,245,245)");
    return;
  }
  h = fnv(name, package_len(name));
  fh = fnv(name, strlen(name));
  snprintf(out, 48, "rgb(%u,%u,%u)", 205 + h % 50,
           (h >> 8) % 150 + fh % 80, (h >> 16) % 55);
}

/* The hover line of a frame: "value, p%" or the diff's three numbers. */
static void info(const svg *s, uint32_t n, int64_t v, vbuf *b) {
  char a[64], c[64];

  if (s->t->diff && n != NONE) {
    int64_t base = s->t->tot[n][0], target = s->t->tot[n][1];
    view_label(base, s->unit, a);
    view_label(target, s->unit, c);
    vbuf_printf(b, "base %s, target %s; share of the total %+.2f%%", a, c,
                s->total ? 100.0 * delta(s, n) / (double)s->total : 0.0);
    return;
  }
  view_label(v, s->unit, a);
  vbuf_printf(b, "%s, %.2f%%", a,
              s->total ? 100.0 * (double)v / (double)s->total : 0.0);
}

/* One frame: n is its node (NONE for a run of narrow frames, which gets
** no label). */
static void frame(const svg *s, uint32_t n, const char *name, int64_t v,
                  double x, uint32_t depth, const char *fill, vbuf *b) {
  double w = (double)v * s->scale;
  int y = TOP + (int)(s->maxdepth - depth) * FRAMEH;
  size_t fit = w > 3 * CHARW ? (size_t)((w - 6) / CHARW) : 0, len;

  vbuf_puts(b, "<g><title>");
  vbuf_xml(b, name);
  vbuf_puts(b, "\n");
  info(s, n, v, b);
  vbuf_printf(b, "</title><rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" "
                 "height=\"%d\" fill=\"%s\"/><text x=\"%.2f\" y=\"%d\">",
              x, y, w, FRAMEH - 1, fill, x + 3, y + FRAMEH - 4);
  len = strlen(name);
  if (fit >= 3 && n != NONE) {
    if (len <= fit) {
      vbuf_xml(b, name);
    } else {
      /* cut before a character, not inside one: a broken UTF-8
      ** sequence makes the whole svg unreadable to an XML parser */
      size_t k = fit - 2;
      while (k > 0 && ((unsigned char)name[k] & 0xc0) == 0x80)
        k--;
      char *cut = strndup(name, k);
      if (cut == NULL) {
        b->oom = 1;
        return;
      }
      vbuf_xml(b, cut);
      vbuf_puts(b, "..");
      free(cut);
    }
  }
  vbuf_puts(b, "</text></g>\n");
}

/* Draws the children of n (drawn at x, depth) and their subtrees. */
static void draw(const svg *s, uint32_t n, double x, uint32_t depth,
                 vbuf *b) {
  const vtree *t = s->t;
  double runx = x, run = 0;
  int64_t runv = 0;
  size_t runk = 0;
  char fill[48], label[64];
  uint32_t c;

  if (depth >= MAXDEPTH)
    return;
  for (c = t->first[n]; c != NONE && !b->oom; c = t->next[c]) {
    int64_t v = wval(s, c);
    double w = (double)v * s->scale;
    const char *name = pprof_stacks_name(t->st, t->name[c]);
    if (v <= 0)
      continue;
    if (w < s->minw) {
      if (runk++ == 0)
        runx = x;
      run += w;
      runv = view_add(runv, v);
      x += w;
      continue;
    }
    if (run >= s->minw) {
      snprintf(label, sizeof label, "(%zu narrow frames)", runk);
      frame(s, NONE, label, runv, runx, depth + 1, "rgb(200,200,200)", b);
    }
    run = 0;
    runv = 0;
    runk = 0;
    colour(s, c, name, fill);
    frame(s, c, name, v, x, depth + 1, fill, b);
    draw(s, c, x, depth + 1, b);
    x += w;
  }
  if (run >= s->minw) {
    snprintf(label, sizeof label, "(%zu narrow frames)", runk);
    frame(s, NONE, label, runv, runx, depth + 1, "rgb(200,200,200)", b);
  }
}

static const char SCRIPT[] =
    "<script type=\"text/ecmascript\"><![CDATA[\n"
    "var W=1200,P=10,FW=W-2*P,fr=[],det,mat,zoomed=null,query=null;\n"
    "function el(i){return document.getElementById(i);}\n"
    "function init(){var gs=el('frames').getElementsByTagName('g');"
    "det=el('details');mat=el('matched');\n"
    " for(var i=0;i<gs.length;i++){var g=gs[i],r=g.getElementsByTagName('rect')[0],"
    "t=g.getElementsByTagName('text')[0],ti=g.getElementsByTagName('title')[0].textContent,"
    "k=ti.lastIndexOf('\\n');\n"
    "  var f={g:g,r:r,t:t,x:+r.getAttribute('x'),w:+r.getAttribute('width'),"
    "y:+r.getAttribute('y'),name:ti.substring(0,k),info:ti.substring(k+1),"
    "fill:r.getAttribute('fill'),narrow:r.getAttribute('fill')=='rgb(200,200,200)'};fr.push(f);\n"
    "  g.onmouseover=(function(f){return function(){det.textContent=f.name+'  '+f.info;};})(f);\n"
    "  g.onmouseout=function(){det.textContent=' ';};\n"
    "  g.onclick=(function(f){return function(){zoom(f);};})(f);}\n"
    " el('reset').onclick=reset;\n"
    " el('search').onclick=function(){var q=prompt('Search frames (regular expression)',query||'');"
    "if(q!==null)search(q);};}\n"
    "function label(f,w){var n=Math.floor((w-6)/7);if(n<3||f.narrow){f.t.textContent='';return;}"
    "f.t.textContent=f.name.length<=n?f.name:f.name.substring(0,n-2)+'..';}\n"
    "function place(f,x,w){f.g.style.display='';f.r.setAttribute('x',x.toFixed(2));"
    "f.r.setAttribute('width',w.toFixed(2));f.t.setAttribute('x',(x+3).toFixed(2));label(f,w);}\n"
    "function zoom(z){zoomed=z;var e=0.005;for(var i=0;i<fr.length;i++){var f=fr[i];\n"
    "  if(f.y>z.y&&f.x<=z.x+e&&f.x+f.w>=z.x+z.w-e)place(f,P,FW);\n"
    "  else if(f.y<=z.y&&f.x>=z.x-e&&f.x+f.w<=z.x+z.w+e)place(f,P+(f.x-z.x)*FW/z.w,f.w*FW/z.w);\n"
    "  else f.g.style.display='none';}\n"
    " el('reset').style.opacity=1;}\n"
    "function reset(){zoomed=null;for(var i=0;i<fr.length;i++)place(fr[i],fr[i].x,fr[i].w);"
    "search(null);el('reset').style.opacity=0.4;}\n"
    "function search(q){var re=null,iv=[],i,tot=0,end=-1;query=q;\n"
    " if(q){try{re=new RegExp(q);}catch(x){mat.textContent='bad expression';return;}}\n"
    " for(i=0;i<fr.length;i++){var f=fr[i];if(re&&!f.narrow&&re.test(f.name)){"
    "f.r.setAttribute('fill','rgb(230,0,230)');iv.push([f.x,f.x+f.w]);}"
    "else f.r.setAttribute('fill',f.fill);}\n"
    " iv.sort(function(a,b){return a[0]-b[0];});\n"
    " for(i=0;i<iv.length;i++){if(iv[i][0]>=end){tot+=iv[i][1]-iv[i][0];end=iv[i][1];}"
    "else if(iv[i][1]>end){tot+=iv[i][1]-end;end=iv[i][1];}}\n"
    " mat.textContent=re?'Matched: '+(100*tot/FW).toFixed(2)+'%':' ';}\n"
    "]]></script>\n";

void view_svg(const vtree *t, const char *title, vbuf *b) {
  svg s;
  char tot[64];
  int height;
  size_t k;
  uint32_t md;

  memset(&s, 0, sizeof s);
  s.t = t;
  s.unit = pprof_stacks_unit(t->st, t->type);
  s.total = t->n > 0 ? wval(&s, 0) : 0;
  s.scale = s.total > 0 ? (WIDTH - 2 * PAD) / (double)s.total : 0;
  if (t->diff && t->n > 0) {
    s.ratio = t->tot[0][0] > 0 ? (double)t->tot[0][1] / (double)t->tot[0][0]
                               : 1.0;
    for (k = 1; k < t->n; k++) {
      double d = delta(&s, (uint32_t)k);
      if (d < 0)
        d = -d;
      if (d > s.maxdelta)
        s.maxdelta = d;
    }
  }
  for (s.minw = MINW;; s.minw *= 2) {
    md = 0;
    if (s.total <= 0 || count(&s, 0, MAXBYTES, 0, &md) <= MAXBYTES)
      break;
  }
  s.maxdepth = md;
  height = TOP + (int)(md + 1) * FRAMEH + BOTTOM;
  vbuf_printf(b,
              "<?xml version=\"1.0\" standalone=\"no\"?>\n"
              "<svg version=\"1.1\" width=\"1200\" height=\"%d\" "
              "viewBox=\"0 0 1200 %d\" xmlns=\"http://www.w3.org/2000/svg\" "
              "onload=\"init()\">\n"
              "<style>text{font-family:monospace;font-size:12px;fill:#000}"
              "#frames g:hover rect{stroke:#000;stroke-width:0.5}"
              "#frames g{cursor:pointer}.btn{cursor:pointer;fill:#336}"
              "</style>\n",
              height, height);
  vbuf_puts(b, SCRIPT);
  vbuf_printf(b, "<rect width=\"100%%\" height=\"100%%\" fill=\"#f8f8f4\"/>\n"
                 "<text x=\"600\" y=\"22\" text-anchor=\"middle\" "
                 "style=\"font-size:16px\">");
  vbuf_xml(b, title && *title ? title : "Flame graph");
  view_label(s.total, s.unit, tot);
  vbuf_printf(b, "</text>\n<text x=\"600\" y=\"42\" text-anchor=\"middle\">");
  vbuf_xml(b, pprof_stacks_type(t->st, t->type));
  vbuf_printf(b, " (%s), %s%s%s</text>\n",
              s.unit, t->diff ? "target total " : "total ", tot,
              t->diff ? "; red grew, blue shrank since the base (normalised "
                        "to the target's total)"
                      : "");
  vbuf_printf(b,
              "<text id=\"reset\" class=\"btn\" x=\"10\" y=\"22\" "
              "style=\"opacity:0.4\">Reset zoom</text>\n"
              "<text id=\"search\" class=\"btn\" x=\"1130\" y=\"22\">"
              "Search</text>\n"
              "<text id=\"matched\" x=\"1050\" y=\"%d\"> </text>\n"
              "<text id=\"details\" x=\"10\" y=\"%d\"> </text>\n"
              "<g id=\"frames\">\n",
              height - 10, height - 10);
  if (s.total > 0) {
    char fill[48];
    colour(&s, 0, "all", fill);
    frame(&s, 0, "all", s.total, PAD, 0,
          t->diff ? fill : "rgb(220,220,220)", b);
    draw(&s, 0, PAD, 0, b);
  }
  vbuf_puts(b, "</g>\n</svg>\n");
}
