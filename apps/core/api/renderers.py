from rest_framework.renderers import BaseRenderer


class PDFRenderer(BaseRenderer):
    """Lets clients ask for `Accept: application/pdf`; the view answers with a FileResponse."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data
