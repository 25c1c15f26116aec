"""Finding what a matplotlib figure drew: artists by gid (the plots name theirs), the data
x-range of a span or a line, the labels."""


def by_gid(ax, gid):
    return [a for a in ax.get_children() if a.get_gid() == gid]


def x_extent(ax, artist):
    """The data x-range an artist covers (a span or a line)."""
    if hasattr(artist, "get_xdata"):
        xs = list(artist.get_xdata())
    else:
        verts = artist.get_transform().transform(artist.get_path().vertices)
        xs = list(ax.transData.inverted().transform(verts)[:, 0])
    return min(xs), max(xs)


def spans(ax, gid):
    return sorted({tuple(round(v, 6) for v in x_extent(ax, a)) for a in by_gid(ax, gid)
                   if not hasattr(a, "get_xdata") and not hasattr(a, "get_text")})


def vlines(ax, gid):
    return sorted({round(a.get_xdata()[0], 6) for a in by_gid(ax, gid) if hasattr(a, "get_xdata")})


def texts(ax, gid):
    return [a.get_text() for a in by_gid(ax, gid) if hasattr(a, "get_text")]


def data_max(ax, gid):
    return max(max(v for v in line.get_ydata() if v is not None) for line in by_gid(ax, gid))
