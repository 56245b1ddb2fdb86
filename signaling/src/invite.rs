//! The QR code of a class's student link, as SVG, for the teacher's invite panel (a projector
//! shows it; a phone's camera opens the link).

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The link as a QR code in an SVG image (black on white, with the quiet zone a reader needs),
/// and the QR version used. Error correction M: readable from a projector across a room while
/// a link of a few hundred characters still fits comfortably.
pub fn qr_svg(link: &str) -> Result<(String, i16), qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(link.as_bytes(), EcLevel::M)?;
    let version = match code.version() {
        qrcode::Version::Normal(v) | qrcode::Version::Micro(v) => v,
    };
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    Ok((image, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The width in modules of a version-`v` symbol (ISO/IEC 18004: 17 + 4v), plus the 4-module
    /// quiet zone on each side.
    fn modules(v: i16) -> usize {
        17 + 4 * v as usize + 8
    }

    #[test]
    fn a_student_link_is_a_valid_qr_matrix_of_the_right_version() {
        // A link as the server mints it: ~270 bytes; at level M in byte mode, version 9 holds 180
        // bytes and version 10 holds 213, version 11 251, version 12 287.
        let link = format!(
            "https://aula.example.org/join#token={}.{}.{}",
            "e".repeat(36),
            "f".repeat(150),
            "g".repeat(43)
        );
        assert_eq!(link.len(), 267);
        let (image, version) = qr_svg(&link).unwrap();
        assert_eq!(
            version, 12,
            "the smallest version that holds 267 bytes at level M"
        );
        let code = QrCode::with_error_correction_level(link.as_bytes(), EcLevel::M).unwrap();
        assert_eq!(code.width(), 17 + 4 * 12);
        // The finder patterns: 7×7 dark rings at three corners.
        let dark = |x: usize, y: usize| code[(x, y)] == qrcode::Color::Dark;
        let w = code.width();
        for (ox, oy) in [(0, 0), (w - 7, 0), (0, w - 7)] {
            for i in 0..7 {
                assert!(
                    dark(ox + i, oy)
                        && dark(ox + i, oy + 6)
                        && dark(ox, oy + i)
                        && dark(ox + 6, oy + i)
                );
            }
            for i in 1..6 {
                assert!(!dark(ox + i, oy + 1) && !dark(ox + 1, oy + i));
            }
            for y in 2..5 {
                for x in 2..5 {
                    assert!(dark(ox + x, oy + y));
                }
            }
        }
        // The SVG is square, at least 256 px, a whole number of pixels per module, and draws the
        // dark modules as one path.
        assert!(image.starts_with("<?xml"), "{}", &image[..60]);
        let size: usize = image
            .split("width=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(size >= 256, "{size}");
        assert_eq!(
            size % modules(version),
            0,
            "{size} px for {} modules",
            modules(version)
        );
        assert!(image.contains(&format!("height=\"{size}\"")));
        assert!(image.contains("fill=\"#000000\"") && image.contains("fill=\"#ffffff\""));
    }

    #[test]
    fn short_links_use_small_versions() {
        assert_eq!(qr_svg("http://127.0.0.1:8080/join#token=x").unwrap().1, 3);
    }
}
