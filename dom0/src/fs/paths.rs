//! Paths in the guest library: which `create` arguments name a library file,
//! and where a configuration's image is. Plain string logic, host-tested.

use alloc::string::String;

/// Whether a `create` argument names a file in the guest library rather
/// than a boot module: library paths contain a `/` (boot module names never
/// do: `tern-pack` refuses them).
pub fn is_library_path(arg: &str) -> bool {
    arg.contains('/')
}

/// `arg` as an absolute library path: a relative one (`guests/web.toml`) is
/// taken from the root.
pub fn absolute(arg: &str) -> String {
    if arg.starts_with('/') {
        arg.into()
    } else {
        alloc::format!("/{arg}")
    }
}

/// The directory holding the file at absolute `path` (`/` for files in the
/// root), without a trailing `/` except for the root itself.
pub fn parent(path: &str) -> &str {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Where the image a configuration at `config` names is: an absolute
/// `image` as it is, a relative one from the configuration's directory.
pub fn image_path(config: &str, image: &str) -> String {
    if image.starts_with('/') {
        return image.into();
    }
    let dir = parent(config);
    if dir == "/" {
        alloc::format!("/{image}")
    } else {
        alloc::format!("{dir}/{image}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_paths_have_a_slash() {
        assert!(is_library_path("/guests/web.toml"));
        assert!(is_library_path("guests/web.toml"));
        assert!(!is_library_path("demo"));
        assert!(!is_library_path("demo.toml"));
    }

    #[test]
    fn relative_arguments_start_at_the_root() {
        assert_eq!(absolute("guests/web.toml"), "/guests/web.toml");
        assert_eq!(absolute("/guests/web.toml"), "/guests/web.toml");
    }

    #[test]
    fn parents() {
        assert_eq!(parent("/guests/web.toml"), "/guests");
        assert_eq!(parent("/a/b/c.toml"), "/a/b");
        assert_eq!(parent("/web.toml"), "/");
        assert_eq!(parent("/"), "/");
    }

    #[test]
    fn images_are_relative_to_their_configuration() {
        assert_eq!(
            image_path("/guests/web.toml", "web-guest"),
            "/guests/web-guest"
        );
        assert_eq!(image_path("/guests/web.toml", "bin/web"), "/guests/bin/web");
        assert_eq!(image_path("/web.toml", "web-guest"), "/web-guest");
        assert_eq!(image_path("/guests/web.toml", "/images/web"), "/images/web");
    }
}
