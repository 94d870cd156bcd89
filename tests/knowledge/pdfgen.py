"""A tiny PDF writer for tests: pages of text lines in Helvetica, optional outline."""

from __future__ import annotations


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]], title: str = "", outline: list[tuple[str, int]] | None = None) -> bytes:
    """``pages``: lines per page (an empty line = paragraph break); ``outline``: (title, page)."""
    objs: list[bytes] = []
    n_pages = len(pages)
    page_ids = [4 + 2 * i for i in range(n_pages)]
    out_id = 4 + 2 * n_pages
    info_id = out_id + 1 + len(outline or [])
    catalog = b"<< /Type /Catalog /Pages 2 0 R" + (f" /Outlines {out_id} 0 R".encode() if outline else b"") + b" >>"
    objs.append(catalog)
    kids = " ".join(f"{p} 0 R" for p in page_ids)
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 11 Tf", "14 TL", "50 780 Td"]
        for line in lines:
            ops.append(f"({_esc(line)}) Tj T*" if line else "T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {page_ids[i] + 1} 0 R >>".encode())
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    if outline:
        first, last = out_id + 1, out_id + len(outline)
        objs.append(f"<< /Type /Outlines /First {first} 0 R /Last {last} 0 R /Count {len(outline)} >>".encode())
        for j, (name, page) in enumerate(outline):
            oid = out_id + 1 + j
            links = (f" /Prev {oid - 1} 0 R" if j else "") + (f" /Next {oid + 1} 0 R" if oid < last else "")
            objs.append(f"<< /Title ({_esc(name)}) /Parent {out_id} 0 R{links} /Dest [{page_ids[page]} 0 R /Fit] >>".encode())
    objs.append(f"<< /Title ({_esc(title)}) >>".encode())
    body = b"%PDF-1.4\n"
    offsets = []
    for n, obj in enumerate(objs, 1):
        offsets.append(len(body))
        body += f"{n} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(body)
    body += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    body += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    body += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R /Info {info_id} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return body
