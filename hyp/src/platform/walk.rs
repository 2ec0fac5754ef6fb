//! Depth-first device-tree walk that keeps the chain of ancestors, so that `reg`
//! addresses can be translated through every parent bus's `ranges` to CPU physical
//! addresses (Devicetree Specification v0.4, 2.3.8 "ranges": an absent `ranges`
//! means the child bus is not memory mapped; an empty one means identity).
//!
//! The `fdt` crate gives nodes and raw properties but does not translate
//! addresses, so this module does it with a fixed-depth stack (no heap).

use fdt::Fdt;
use fdt::node::FdtNode;

use super::PlatformError;
use crate::memmap::FixedList;

/// Deepest node nesting the walk accepts (real trees use 4 or 5).
pub const MAX_DEPTH: usize = 16;

/// Size of one devicetree cell in bytes.
const CELL_BYTES: usize = 4;

/// The Devicetree Specification defaults for a node without `#address-cells` /
/// `#size-cells` (section 2.3.5).
const DEFAULT_ADDRESS_CELLS: u32 = 2;
const DEFAULT_SIZE_CELLS: u32 = 1;

/// The properties of one node that platform discovery looks at.
#[derive(Clone, Copy, Default, Debug)]
pub struct Props<'a> {
    /// Unit name, e.g. `serial@7e201000`.
    pub name: &'a str,
    /// `compatible`: NUL-separated strings.
    pub compatible: &'a [u8],
    /// `status`.
    pub status: Option<&'a str>,
    /// `device_type`.
    pub device_type: Option<&'a str>,
    /// `reg`, raw.
    pub reg: Option<&'a [u8]>,
    /// `ranges`, raw (`Some(&[])` for an empty `ranges;`).
    pub ranges: Option<&'a [u8]>,
    /// `#address-cells`.
    pub address_cells: Option<u32>,
    /// `#size-cells`.
    pub size_cells: Option<u32>,
    /// `interrupts`, raw.
    pub interrupts: Option<&'a [u8]>,
    /// `interrupt-parent` phandle.
    pub interrupt_parent: Option<u32>,
    /// `phandle`.
    pub phandle: Option<u32>,
    /// `#interrupt-cells`.
    pub interrupt_cells: Option<u32>,
    /// `#redistributor-regions` (GICv3 binding).
    pub redistributor_regions: Option<u32>,
    /// `enable-method` (CPUs).
    pub enable_method: Option<&'a str>,
    /// `cpu-release-addr` (spin-table CPUs), raw.
    pub cpu_release_addr: Option<&'a [u8]>,
    /// `method` (PSCI).
    pub method: Option<&'a str>,
}

impl<'a> Props<'a> {
    fn read(node: FdtNode<'_, 'a>) -> Result<Self, PlatformError> {
        let mut p = Props {
            name: node.name,
            ..Props::default()
        };
        for prop in node.properties() {
            let v = prop.value;
            match prop.name {
                "compatible" => p.compatible = v,
                "status" => p.status = Some(as_str(v)),
                "device_type" => p.device_type = Some(as_str(v)),
                "reg" => p.reg = Some(v),
                "ranges" => p.ranges = Some(v),
                "#address-cells" => p.address_cells = Some(u32_prop(v, "#address-cells")?),
                "#size-cells" => p.size_cells = Some(u32_prop(v, "#size-cells")?),
                "interrupts" => p.interrupts = Some(v),
                "interrupt-parent" => p.interrupt_parent = Some(u32_prop(v, "interrupt-parent")?),
                "phandle" => p.phandle = Some(u32_prop(v, "phandle")?),
                "#interrupt-cells" => p.interrupt_cells = Some(u32_prop(v, "#interrupt-cells")?),
                "#redistributor-regions" => {
                    p.redistributor_regions = Some(u32_prop(v, "#redistributor-regions")?)
                }
                "enable-method" => p.enable_method = Some(as_str(v)),
                "cpu-release-addr" => p.cpu_release_addr = Some(v),
                "method" => p.method = Some(as_str(v)),
                _ => {}
            }
        }
        Ok(p)
    }

    /// Whether one of the `compatible` strings is `c`.
    // Out of line: it is asked at many places, and each inlined copy of the
    // split costs several hundred bytes of image.
    #[inline(never)]
    pub fn is_compatible(&self, c: &str) -> bool {
        self.compatible
            .split(|&b| b == 0)
            .any(|s| s == c.as_bytes())
    }

    /// Whether the node is usable (`status` absent, "okay" or "ok"; spec 2.3.4).
    pub fn enabled(&self) -> bool {
        matches!(self.status, None | Some("okay") | Some("ok"))
    }
}

/// A string property without its terminating NUL; invalid UTF-8 reads as "".
pub fn as_str(v: &[u8]) -> &str {
    let v = v.strip_suffix(&[0]).unwrap_or(v);
    core::str::from_utf8(v).unwrap_or("")
}

fn u32_prop(v: &[u8], what: &'static str) -> Result<u32, PlatformError> {
    match read_cells(v, 1) {
        Some(x) if v.len() == CELL_BYTES => {
            u32::try_from(x).map_err(|_| PlatformError::Malformed(what))
        }
        _ => Err(PlatformError::Malformed(what)),
    }
}

/// Reads a big-endian value of `cells` cells (at most 2) from the front of `v`.
// Out of line: inlined, the unrolled fold costs about 1.5 KiB of image.
#[inline(never)]
pub fn read_cells(v: &[u8], cells: u32) -> Option<u64> {
    if cells > 2 {
        return None;
    }
    let bytes = v.get(..cells as usize * CELL_BYTES)?;
    Some(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// A 32- or 64-bit scalar property (e.g. `linux,initrd-start`, `cpu-release-addr`).
pub fn scalar(v: &[u8]) -> Option<u64> {
    match v.len() {
        4 => read_cells(v, 1),
        8 => read_cells(v, 2),
        _ => None,
    }
}

/// What an ancestor contributes to the interpretation of its descendants.
#[derive(Clone, Copy, Debug, Default)]
pub struct Frame<'a> {
    /// The ancestor's unit name ("" for the root).
    pub name: &'a str,
    /// `#address-cells` for its children.
    pub address_cells: u32,
    /// `#size-cells` for its children.
    pub size_cells: u32,
    /// Its `ranges` (child bus to its own parent's bus); the root uses `Some(&[])`.
    pub ranges: Option<&'a [u8]>,
    /// The interrupt parent in force for its children (inherited, spec 2.4.1).
    pub interrupt_parent: Option<u32>,
}

/// The ancestor stack of the node being visited: root first, parent last.
pub type Ancestors<'a> = FixedList<Frame<'a>, MAX_DEPTH>;

/// Called for every node in document order.
pub trait Visitor<'a> {
    /// Looks at one node; `ancestors` is never empty except for the root itself.
    fn node(&mut self, props: &Props<'a>, ancestors: &[Frame<'a>]) -> Result<(), PlatformError>;
}

/// Walks the whole tree, root included.
pub fn walk<'a>(fdt: &Fdt<'a>, visitor: &mut impl Visitor<'a>) -> Result<(), PlatformError> {
    let root = fdt
        .find_node("/")
        .ok_or(PlatformError::Malformed("root node"))?;
    let mut stack = Ancestors::new();
    visit(root, &mut stack, visitor)
}

fn visit<'a>(
    node: FdtNode<'_, 'a>,
    stack: &mut Ancestors<'a>,
    visitor: &mut impl Visitor<'a>,
) -> Result<(), PlatformError> {
    let props = Props::read(node)?;
    visitor.node(&props, stack)?;
    let inherited = stack.last().and_then(|f| f.interrupt_parent);
    let frame = Frame {
        name: props.name,
        address_cells: props.address_cells.unwrap_or(DEFAULT_ADDRESS_CELLS),
        size_cells: props.size_cells.unwrap_or(DEFAULT_SIZE_CELLS),
        // The root's addresses are CPU addresses by definition.
        ranges: if stack.is_empty() {
            Some(&[])
        } else {
            props.ranges
        },
        interrupt_parent: props.interrupt_parent.or(inherited),
    };
    stack.push(frame).map_err(|_| PlatformError::TooDeep)?;
    for child in node.children() {
        visit(child, stack, visitor)?;
    }
    stack.remove(stack.len() - 1);
    Ok(())
}

/// The `(address, size)` pairs of a `reg` property as the parent bus sees them.
pub fn reg_entries<'a>(reg: &'a [u8], parent: &Frame<'_>) -> impl Iterator<Item = (u64, u64)> + 'a {
    let (ac, sc) = (parent.address_cells, parent.size_cells);
    let stride = (ac + sc) as usize * CELL_BYTES;
    // A zero stride or more than 2 cells (e.g. PCI) cannot be read as plain addresses.
    let usable = stride != 0 && ac <= 2 && sc <= 2;
    reg.chunks_exact(if usable { stride } else { usize::MAX })
        .filter(move |_| usable)
        .filter_map(move |c| {
            let addr = read_cells(c, ac)?;
            let size = read_cells(c.get(ac as usize * CELL_BYTES..)?, sc)?;
            Some((addr, size))
        })
}

/// Translates `[addr, addr + size)` from the bus of the node whose ancestors are
/// given to a CPU physical address, going up through every `ranges`.
/// `None` if some bus on the way has no `ranges` or no entry covers the range.
pub fn translate(ancestors: &[Frame<'_>], mut addr: u64, size: u64) -> Option<u64> {
    for i in (1..ancestors.len()).rev() {
        let bus = &ancestors[i];
        let up = &ancestors[i - 1];
        let ranges = bus.ranges?;
        if ranges.is_empty() {
            continue;
        }
        let (cc, pc, sc) = (bus.address_cells, up.address_cells, bus.size_cells);
        if cc > 2 || pc > 2 || sc == 0 || sc > 2 {
            return None;
        }
        let stride = (cc + pc + sc) as usize * CELL_BYTES;
        addr = ranges.chunks_exact(stride).find_map(|e| {
            let child = read_cells(e, cc)?;
            let parent = read_cells(e.get(cc as usize * CELL_BYTES..)?, pc)?;
            let len = read_cells(e.get((cc + pc) as usize * CELL_BYTES..)?, sc)?;
            let offset = addr.checked_sub(child)?;
            (offset < len && size <= len - offset).then(|| parent.checked_add(offset))?
        })?;
    }
    Some(addr)
}

/// Whether the node named `name` under `ancestors` has the path `path`
/// (`/a/b@1/c`). A path component without a unit address matches a node name
/// with one (spec 2.2.3).
pub fn path_matches(ancestors: &[Frame<'_>], name: &str, path: &str) -> bool {
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let names = ancestors
        .iter()
        .skip(1)
        .map(|f| f.name)
        .chain(core::iter::once(name));
    for n in names {
        match parts.next() {
            Some(p) if p == n || (!p.contains('@') && n.split('@').next() == Some(p)) => {}
            _ => return false,
        }
    }
    parts.next().is_none()
}
